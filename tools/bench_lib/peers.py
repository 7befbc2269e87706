"""Peer mTLS tunnel pairs for tools/bench: stunnel4 and HAProxy (mode tcp).

Both use the same ECDSA P-256 certificates from `ambitctl ca issue` that the agents use, TLS 1.3
only, client certificate required, TCP_NODELAY. Side A sits in the client's node namespace (the
client pod connects to its gateway), side B in the server's node namespace.
"""
import os


def _pem(d, name):
    return os.path.join(d, name)


def stunnel_configs(workdir, cert_a, cert_b, ca, routes):
    """routes: list of (listen_a, b_addr, server_addr) 'ip:port' strings. Returns (conf_a, conf_b)."""
    common = ["foreground = yes", "pid =", "syslog = no", "debug = 3",
              f"CAfile = {ca}", "verifyChain = yes", "requireCert = yes",
              "sslVersionMin = TLSv1.3", "socket = l:TCP_NODELAY=1", "socket = r:TCP_NODELAY=1"]
    a = common + [f"cert = {_pem(cert_a, 'cert-chain.pem')}", f"key = {_pem(cert_a, 'key.pem')}"]
    b = common + [f"cert = {_pem(cert_b, 'cert-chain.pem')}", f"key = {_pem(cert_b, 'key.pem')}"]
    for i, (listen_a, b_addr, server) in enumerate(routes):
        a += [f"[r{i}]", "client = yes", f"accept = {listen_a}", f"connect = {b_addr}"]
        b += [f"[r{i}]", f"accept = {b_addr}", f"connect = {server}"]
    paths = []
    for name, lines in (("stunnel-a.conf", a), ("stunnel-b.conf", b)):
        p = os.path.join(workdir, name)
        with open(p, "w") as f:
            f.write("\n".join(lines) + "\n")
        paths.append(p)
    return paths


def _combined_pem(cert_dir):
    """HAProxy wants certificate chain and key in one file."""
    out = os.path.join(cert_dir, "haproxy.pem")
    with open(out, "w") as f:
        for n in ("cert-chain.pem", "key.pem"):
            with open(_pem(cert_dir, n)) as src:
                f.write(src.read())
    return out


HAPROXY_GLOBAL = """global
  nbthread {threads}
  maxconn 9000
  tune.ssl.default-dh-param 2048
defaults
  mode {mode}
  timeout connect 5s
  timeout client 1h
  timeout server 1h
"""


def haproxy_configs(workdir, cert_a, cert_b, ca, routes, threads=2):
    pem_a, pem_b = _combined_pem(cert_a), _combined_pem(cert_b)
    tls = f"ca-file {ca} verify required ssl-min-ver TLSv1.3"
    a = [HAPROXY_GLOBAL.format(threads=threads, mode="tcp")]
    b = [HAPROXY_GLOBAL.format(threads=threads, mode="tcp")]
    for i, (listen_a, b_addr, server) in enumerate(routes):
        a.append(f"frontend fa{i}\n  bind {listen_a}\n  default_backend ba{i}\n"
                 f"backend ba{i}\n  server b {b_addr} ssl crt {pem_a} {tls}\n")
        b.append(f"frontend fb{i}\n  bind {b_addr} ssl crt {pem_b} {tls}\n  default_backend bb{i}\n"
                 f"backend bb{i}\n  server s {server}\n")
    paths = []
    for name, text in (("haproxy-a.cfg", a), ("haproxy-b.cfg", b)):
        p = os.path.join(workdir, name)
        with open(p, "w") as f:
            f.write("\n".join(text))
        paths.append(p)
    return paths


def http_responder_config(workdir, port, body_bytes=1024):
    """HAProxy as a tiny HTTP/1.1 server: every request gets 200 with a body_bytes body."""
    body = os.path.join(workdir, "body.txt")
    with open(body, "w") as f:
        f.write("x" * (body_bytes - 1) + "\n")
    cfg = os.path.join(workdir, f"responder-{port}.cfg")
    with open(cfg, "w") as f:
        f.write(HAPROXY_GLOBAL.format(threads=1, mode="http"))
        f.write(f"frontend www\n  bind 0.0.0.0:{port}\n  option http-keep-alive\n"
                f"  http-request return status 200 content-type text/plain file {body}\n")
    return cfg
