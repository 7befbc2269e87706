#!/usr/bin/env python3
"""Writes the seed corpora under tests/fuzz/corpus/<target>/ (committed).

Run from anywhere: python3 tests/fuzz/make_seeds.py [--protoc protoc]
Seeds are small, real-shaped inputs; libFuzzer grows its own corpus in
build-fuzz/corpus/<target>/ (not committed). The TLS seed is a ClientHello
from Python's ssl module, so it differs per run: regenerate only when needed.
"""
import argparse
import os
import ssl
import struct
import subprocess

HERE = os.path.dirname(os.path.abspath(__file__))
CORPUS = os.path.join(HERE, "corpus")
PROTO_DIR = os.path.join(HERE, "..", "..", "proto")
REPO = os.path.join(HERE, "..", "..")

BAGGAGE = ("k8s.cluster.name=cluster1,k8s.namespace.name=demo,k8s.deployment.name=client,"
           "service.name=client,service.version=v1")
TRACEPARENT = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-00"
FORWARDED = 'for="10.44.1.10:43210";host=httpbin.demo.svc.cluster.local'


def write(target, name, data):
    d = os.path.join(CORPUS, target)
    os.makedirs(d, exist_ok=True)
    if isinstance(data, str):
        data = data.encode()
    with open(os.path.join(d, name), "wb") as f:
        f.write(data)


# ---- HTTP/2 frames (RFC 9113) with HPACK literals (RFC 7541 §6.2.2) -------
def frame(ftype, flags, stream, payload=b""):
    return struct.pack(">I", len(payload))[1:] + bytes([ftype, flags]) + \
        struct.pack(">I", stream) + payload


def hpack_literal(name, value):
    def s(x):
        x = x.encode()
        assert len(x) < 127
        return bytes([len(x)]) + x
    return b"\x00" + s(name) + s(value)  # literal without indexing, new name


def headers_block(pairs):
    return b"".join(hpack_literal(n, v) for n, v in pairs)


def h2_seeds():
    settings = frame(0x4, 0, 0, struct.pack(">HI", 0x3, 100) + struct.pack(">HI", 0x4, 65535))
    settings_ack = frame(0x4, 0x1, 0, b"")
    connect = headers_block([(":method", "CONNECT"), (":authority", "10.44.2.10:8080"),
                             ("baggage", BAGGAGE), ("forwarded", FORWARDED),
                             ("traceparent", TRACEPARENT)])
    headers = frame(0x1, 0x4, 1, connect)  # END_HEADERS
    data = frame(0x0, 0, 1, b"GET / HTTP/1.1\r\nHost: httpbin\r\n\r\n")
    data_end = frame(0x0, 0x1, 1, b"bye")
    wu = frame(0x8, 0, 0, struct.pack(">I", 1 << 20))
    ping = frame(0x6, 0, 0, b"12345678")
    rst = frame(0x3, 0, 3, struct.pack(">I", 8))
    headers3 = frame(0x1, 0x4, 3, connect)
    goaway = frame(0x7, 0, 0, struct.pack(">II", 3, 0))
    # byte 0: bit0 = prepend preface, bits 1..7 = chunk size (0 = whole input)
    write("h2_server", "connect_data", b"\x01" + settings + settings_ack + headers + data +
          data_end)
    write("h2_server", "connect_chunked", bytes([1 | (7 << 1)]) + settings + headers + wu +
          data + ping)
    write("h2_server", "two_streams_reset", b"\x01" + settings + headers + headers3 + rst +
          data + goaway)
    continuation = frame(0x1, 0, 1, connect[:20]) + frame(0x9, 0x4, 1, connect[20:])
    write("h2_server", "continuation", b"\x01" + settings + continuation + data_end)
    write("h2_server", "no_preface", b"\x00" + settings)


def connect_seeds():
    def lines(pairs):
        return "\n".join(f"{n}\0{v}" for n, v in pairs)
    write("connect_request", "full", lines([
        (":method", "CONNECT"), (":authority", "10.44.2.10:8080"), ("baggage", BAGGAGE),
        ("forwarded", FORWARDED), ("traceparent", TRACEPARENT)]))
    write("connect_request", "ipv6_network", lines([
        (":method", "CONNECT"), (":authority", "[fd00::2:10]:15008"),
        ("x-forwarded-network", "net2"), ("traceparent", "bad")]))
    write("connect_request", "hostname", lines([
        (":method", "CONNECT"), (":authority", "httpbin.demo.svc.cluster.local:80"),
        ("forwarded", 'for="[fd00::1]:5000", for=10.0.0.1')]))
    write("connect_request", "get", lines([
        (":method", "GET"), (":scheme", "https"), (":path", "/"), (":authority", "a:1")]))
    write("connect_request", "response", lines([(":status", "200"), ("baggage", BAGGAGE)]))


def header_seeds():
    write("hbone_headers", "istio", f"{BAGGAGE}\0{FORWARDED}\0{TRACEPARENT}")
    write("hbone_headers", "ipv6",
          "k8s.cluster.name=c; prop=1 , k8s.pod.name=p,cloud.region=r,cloud.availability_zone=z"
          '\0For="[fd00::1]:80";Host="svc.ns.svc.cluster.local", for=unknown'
          "\000-00000000000000000000000000000000-0000000000000000-00")


def authority_seeds():
    for i, a in enumerate(["10.44.2.10:8080", "[fd00::2:10]:15008",
                           "httpbin.demo.svc.cluster.local:80", "[::ffff:10.0.0.1]:443",
                           "127.0.0.1:65535", "svc:0"]):
        write("authority", f"seed{i}", a)


def http1_seeds():
    # byte 0: feed chunk size (0 = all at once)
    write("http1", "get", b"\x00GET /config_dump HTTP/1.1\r\nHost: localhost:15000\r\n"
          b"User-Agent: curl/7.88\r\nAccept: */*\r\n\r\n")
    write("http1", "post_logging", b"\x05POST /logging?level=hbone:debug,tls:info HTTP/1.1\r\n"
          b"Host: localhost\r\nContent-Length: 5\r\n\r\nreset")
    write("http1", "pipelined", b"\x00GET /healthz/ready HTTP/1.1\r\nHost: a\r\n\r\n"
          b"GET /metrics HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n")
    write("http1", "chunked", b"\x03POST /quitquitquit HTTP/1.1\r\nHost: a\r\n"
          b"Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\n")
    write("http1", "http10", b"\x00GET /stats/prometheus?x=%41%2 HTTP/1.0\r\n\r\n")


def config_seeds():
    with open(os.path.join(REPO, "tools", "examples", "demo.yaml"), "rb") as f:
        write("local_config", "demo.yaml", f.read())
    write("local_config", "full.yaml", """workloads:
- name: local
  namespace: default
  workloadIps: ["127.0.0.1", "::1"]
  protocol: HBONE
  status: Unhealthy
  networkMode: HostNetwork
  capacity: 7
  locality: {region: r1, zone: z1}
  applicationTunnel: {protocol: PROXY, port: 15088}
  waypoint: {destination: "net1/10.0.0.9", hboneMtlsPort: 15009}
  networkGateway: {destination: {namespace: istio-system, hostname: ew.example}}
  authorizationPolicies: [default/p1]
services:
- name: svc
  namespace: default
  hostname: svc.default.svc.cluster.local
  vips: ["/127.10.0.1", "fd00::10"]
  cidrVips: ["/10.50.0.0/16"]
  ports: {80: 8080, 443: 0}
  subjectAltNames: [spiffe://cluster.local/ns/default/sa/x]
  weightedWaypoints:
  - {destination: {namespace: default, hostname: wp}, weight: 3}
  loadBalancer: {routingPreferences: [Network, Zone], mode: Failover, healthPolicy: AllowAll}
  ipFamilies: Dual
  canonical: true
  visibility: Namespace
policies:
- name: p1
  namespace: default
  scope: WorkloadSelector
  action: Deny
  dryRun: true
  rules:
  - - - notDestinationPorts: [9999]
        principals: [{Prefix: cluster.local/}, {Presence: {}}]
        sourceIps: ["10.0.0.0/8", "10.1.2.3"]
        serviceAccounts: [{namespace: a, serviceAccount: b}]
---
apiVersion: security.istio.io/v1
kind: AuthorizationPolicy
metadata: {name: allow-sleep, namespace: demo}
spec:
  action: ALLOW
  rules:
  - from: [{source: {principals: ["cluster.local/ns/demo/sa/sleep"]}}]
""")


def waypoint_config_seeds():
    # Kubernetes service port forms (map values, list items) and appProtocol.
    write("local_config", "ports_forms.yaml", """services:
- name: s
  namespace: n
  hostname: s.n.svc.cluster.local
  ports: {80: 8080, 81: 0, 9090: {targetPort: 9091, appProtocol: grpc, name: grpc-api},
          8000: {targetPort: web-port}, 443: {appProtocol: kubernetes.io/wss}}
- name: k
  namespace: n
  hostname: k.n.svc.cluster.local
  ports:
  - 3306
  - {port: 80, targetPort: 8080, appProtocol: kubernetes.io/h2c, name: http}
  - {port: 8443, appProtocol: kafka}
""")
    # Waypoint binding: namespaces, labels, gateways: entry and a Gateway document.
    write("local_config", "waypoint_binding.yaml", """namespaces:
- {name: app, labels: {istio.io/use-waypoint: wp, istio.io/use-waypoint-namespace: infra}}
workloads:
- name: wp-0
  namespace: infra
  workloadIps: ["10.44.4.10"]
  protocol: HBONE
  labels: {gateway.networking.k8s.io/gateway-name: wp}
  applicationTunnel: {protocol: PROXY, port: 15088}
  services: {"infra/wp.infra.svc.cluster.local": {15008: 15008}}
- name: server
  namespace: app
  workloadIps: ["10.44.2.10"]
  labels: {istio.io/use-waypoint: none}
  services: {"app/httpbin.app.svc.cluster.local": {80: 8080}}
services:
- {name: wp, namespace: infra, hostname: wp.infra.svc.cluster.local, vips: ["/10.96.0.99"],
   ports: {15008: 15008}}
- {name: httpbin, namespace: app, hostname: httpbin.app.svc.cluster.local, vips: ["/10.96.0.10"],
   ports: [{port: 80, targetPort: 8080, name: http}], labels: {istio.io/use-waypoint: wp}}
gateways:
- metadata: {name: wl, namespace: app, labels: {istio.io/waypoint-for: workload}}
  spec: {gatewayClassName: ambit-waypoint}
---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: wp, namespace: infra, labels: {istio.io/waypoint-for: all}}
spec:
  gatewayClassName: istio-waypoint
  listeners:
  - {name: bare, port: 15008, protocol: HBONE}
  - {name: mesh, port: 15008, protocol: HBONE,
     allowedRoutes: {namespaces: {from: Selector, selector: {matchLabels: {mesh: "on"}}}}}
""")
    # Fixed bug: an HBONE listener without allowedRoutes ('invalid node').
    write("local_config", "gateway_listener_no_routes.yaml", """---
apiVersion: gateway.networking.k8s.io/v1
kind: Gateway
metadata: {name: wp}
spec: {gatewayClassName: istio-waypoint, listeners: [{port: 15008, protocol: HBONE}]}
""")

def tls_seeds():
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    ctx.set_alpn_protocols(["h2"])
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    conn = ctx.wrap_bio(incoming, outgoing, server_side=False)
    try:
        conn.do_handshake()
    except ssl.SSLWantReadError:
        pass
    hello = outgoing.read()
    # byte 0: feed chunk size (0 = all at once)
    write("tls_server", "client_hello", b"\x00" + hello)
    write("tls_server", "client_hello_chunked", b"\x05" + hello)


def encode(protoc, proto, msg, text):
    return subprocess.run([protoc, f"--proto_path={PROTO_DIR}", f"--encode={msg}", proto],
                          input=text.encode(), check=True, capture_output=True).stdout


def proto_seeds(protoc):
    zds = "istio.workload.zds.WorkloadRequest"
    write("zds_request", "add", encode(protoc, "zds.proto", zds, 'add { uid: "cluster1//Pod/demo/client" '
          'workload_info { name: "client" namespace: "demo" service_account: "sleep" } }'))
    write("zds_request", "keep", encode(protoc, "zds.proto", zds, 'keep { uid: "uid-1" }'))
    write("zds_request", "del", encode(protoc, "zds.proto", zds, 'del { uid: "uid-1" }'))
    write("zds_request", "snapshot_sent", encode(protoc, "zds.proto", zds, "snapshot_sent {}"))
    addr = "istio.workload.Address"
    write("xds_address", "workload", encode(protoc, "workload.proto", addr, r'''workload {
  uid: "cluster1//Pod/demo/server-v1" name: "server-v1" namespace: "demo"
  addresses: "\n,\002\n" network: "" tunnel_protocol: HBONE trust_domain: "cluster.local"
  service_account: "httpbin" node: "node-b" canonical_name: "httpbin"
  canonical_revision: "v1" workload_name: "server" cluster_id: "cluster1"
  services { key: "demo/httpbin.demo.svc.cluster.local"
             value { ports { service_port: 80 target_port: 8080 } } }
  waypoint { address { network: "" address: "\n,\002c" } hbone_mtls_port: 15008 }
  application_tunnel { protocol: PROXY port: 15088 }
  authorization_policies: "demo/allow-sleep"
  locality { region: "r1" zone: "z1" }
  capacity { value: 2 }
}'''))
    write("xds_address", "service", encode(protoc, "workload.proto", addr, r'''service {
  name: "httpbin" namespace: "demo" hostname: "httpbin.demo.svc.cluster.local"
  addresses { network: "" address: "\n`\000\n" }
  addresses { network: "net1" address: "\375\000\000\000\000\000\000\000\000\000\000\000\000\000\000\020" }
  ports { service_port: 80 target_port: 8080 }
  subject_alt_names: "spiffe://cluster.local/ns/demo/sa/httpbin"
  waypoint { hostname { namespace: "demo" hostname: "waypoint.demo.svc.cluster.local" } }
  load_balancing { routing_preference: NETWORK routing_preference: ZONE mode: FAILOVER }
  ip_families: DUAL
}'''))


def authorization_seeds(protoc):
    msg = "istio.security.Authorization"
    write("xds_authorization", "allow_principals", encode(protoc, "authorization.proto", msg, r'''
name: "allow-sleep" namespace: "demo" scope: WORKLOAD_SELECTOR action: ALLOW
rules { clauses { matches {
  principals { exact: "cluster.local/ns/demo/sa/sleep" }
  not_principals { prefix: "cluster.local/ns/other/" }
  namespaces { suffix: "mo" } not_namespaces { presence {} }
  destination_ports: 8080 not_destination_ports: 9999
} } }'''))
    write("xds_authorization", "deny_ips", encode(protoc, "authorization.proto", msg, r'''
name: "deny-net" namespace: "istio-system" scope: GLOBAL action: DENY
rules { clauses { matches {
  source_ips { address: "\n\000\000\000" length: 8 }
  not_source_ips { address: "\375\000\000\000\000\000\000\000\000\000\000\000\000\000\000\001" length: 128 }
  destination_ips { address: "\n,\002\n" length: 32 }
  service_accounts { namespace: "demo" serviceAccount: "sleep" }
  not_service_accounts { namespace: "demo" serviceAccount: "stranger" }
} }
  clauses { matches { namespaces { exact: "demo" } } } }
rules { }'''))
    write("xds_authorization", "dry_run_ns", encode(protoc, "authorization.proto", msg, r'''
name: "audit" namespace: "demo" scope: NAMESPACE action: DENY dry_run: true'''))


# ---- PROXY protocol v2 (sandwich header, ISTIO-COMPAT §2.7) ---------------
def proxy_v2_seeds():
    sig = b"\r\n\r\n\x00\r\nQUIT\n"

    def header(cmd_fam, addrs, tlvs=b""):
        body = addrs + tlvs
        return sig + bytes(cmd_fam) + struct.pack(">H", len(body)) + body

    ident = b"spiffe://cluster.local/ns/demo/sa/sleep"
    tlv = bytes([0xD0]) + struct.pack(">H", len(ident)) + ident
    v4 = bytes([10, 44, 1, 5, 10, 96, 0, 30]) + struct.pack(">HH", 40000, 80)
    v6 = bytes(15) + b"\x05" + bytes(10) + b"\xff\xff" + bytes([10, 96, 0, 30]) + \
        struct.pack(">HH", 1234, 80)
    write("proxy_v2", "sandwich_v4", header([0x21, 0x11], v4, tlv) + b"GET / HTTP/1.1\r\n")
    write("proxy_v2", "sandwich_v6", header([0x21, 0x21], v6, tlv))
    write("proxy_v2", "local_noop", header([0x20, 0x00], b"", b"\x04\x00\x02\x00\x00"))
    short = header([0x21, 0x11], v4, tlv)
    short = short[:14] + struct.pack(">H", len(v4) + 10) + short[16:]  # TLV runs past the end
    write("proxy_v2", "tlv_past_end", short)
    write("proxy_v2", "unix_local", header([0x20, 0x31], bytes(216)))
    write("proxy_v2", "v1_text", "PROXY TCP4 10.44.1.5 10.96.0.30 40000 80\r\n")


# ---- DNS messages (the 15053 proxy's codec) --------------------------------
def dns_seeds():
    def name(n):
        out = b""
        for label in n.split("."):
            out += bytes([len(label)]) + label.encode()
        return out + b"\0"

    def query(n, qtype=1, qid=0x1234, flags=0x0100, qd=1, an=0, ar=0, tail=b""):
        return struct.pack(">6H", qid, flags, qd, an, 0, ar) + name(n) + struct.pack(">HH", qtype, 1) + tail

    opt = b"\0" + struct.pack(">HHIH", 41, 1232, 0x8000, 0)
    write("dns_message", "a_short_name", query("httpbin"))
    write("dns_message", "aaaa_fqdn_edns", query("httpbin.demo.svc.cluster.local", 28, ar=1, tail=opt))
    write("dns_message", "txt_external", query("ext.example.com", 16))
    write("dns_message", "header_only", struct.pack(">6H", 0xabcd, 0x0100, 0, 0, 0, 0))
    write("dns_message", "label_past_end", struct.pack(">6H", 1, 0x0100, 1, 0, 0, 0) + b"\x3fa")
    write("dns_message", "pointer_in_question", struct.pack(">6H", 1, 0x0100, 1, 0, 0, 0) + b"\xc0\x0c\0\1\0\1")
    write("dns_message", "two_opts", query("x.example", ar=2, tail=opt + opt))
    # An answer as an upstream sends it: a compressed A record after the question.
    answer = query("ext.example.com", flags=0x8180, an=1) + b"\xc0\x0c" + \
        struct.pack(">HHIH", 1, 1, 60, 4) + bytes([192, 0, 2, 10])
    write("dns_message", "upstream_answer", answer)
    write("dns_message", "response_as_query", answer)
    write("dns_message", "notify_opcode", query("x.example", flags=0x2000))
    # On-demand lookups: a CNAME + A answer, and NXDOMAIN with a SOA in the authority section.
    cname_a = query("ext.example.test", flags=0x8180, an=2) + b"\xc0\x0c" + \
        struct.pack(">HHIH", 5, 1, 30, 5) + b"\x03foo\0" + b"\xc0\x0c" + \
        struct.pack(">HHIH", 1, 1, 60, 4) + bytes([192, 0, 2, 10])
    write("dns_message", "lookup_cname_a", cname_a)
    soa = b"\0\0" + struct.pack(">5I", 1, 2, 3, 4, 20)
    nx = struct.pack(">6H", 0x1234, 0x8183, 1, 0, 1, 0) + name("nope.example.test") + \
        struct.pack(">HH", 1, 1) + b"\xc0\x0c" + struct.pack(">HHIH", 6, 1, 300, len(soa)) + soa
    write("dns_message", "lookup_nxdomain_soa", nx)


def trace_context_seeds():
    # byte 0 picks the parser: 0 traceparent, 1 b3, 2 x-b3-* (fields split on \n), 3 tracestate
    tid, sid = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    seeds = {
        "traceparent": b"\0" + f"00-{tid}-{sid}-01".encode(),
        "traceparent_ff": b"\0" + f"ff-{tid}-{sid}-01".encode(),
        "traceparent_future": b"\0" + f"cc-{tid}-{sid}-09-more".encode(),
        "traceparent_zero": b"\0" + f"00-{'0' * 32}-{sid}-00".encode(),
        "traceparent_upper": b"\0" + f"00-{tid.upper()}-{sid}-01".encode(),
        "b3_single": b"\1" + f"{tid}-{sid}-1-05e3ac9a4f6e3b90".encode(),
        "b3_single_64": b"\1" + b"80f198ee56343ba8-e457b5a2e4d86bd1-d",
        "b3_decision": b"\1" + b"0",
        "b3_multi": b"\2" + f"{tid}\n{sid}\n1\n".encode(),
        "b3_multi_flags": b"\2" + f"80f198ee56343ba8\n{sid}\ntrue\n1".encode(),
        "tracestate": b"\3" + b"congo=t61rcWkgMzE,rojo=00f067aa0ba902b7",
    }
    for name, data in seeds.items():
        write("trace_context", name, data)


def cel_filter_seeds():
    # byte 0 picks: even = Telemetry filter expression, odd = access-log format
    seeds = {
        "seed_filter": b"\0response.code >= 400",
        "and_or_not": b"\0!(response.code < 500) && (request.method == 'GET' || connection.mtls)",
        "headers_in": b"\0request.headers['x-user'] in ['a', \"b\"] && request.path.startsWith('/api')",
        "bad_type": b"\0response.code >= '400'",
        "unsupported": b"\0size(request.path) > 3",
        "istio_text": b"\1[%START_TIME%] \"%REQ(:METHOD)% %REQ(X-ENVOY-ORIGINAL-PATH?:PATH)% %PROTOCOL%\" "
                      b"%RESPONSE_CODE% %RESPONSE_FLAGS% %UPSTREAM_CLUSTER_RAW% %ROUTE_NAME%\n",
        "args": b"\1%REQ(x-a?x-b):5% %START_TIME(%Y %3f)% %BOGUS% 50% %REQ(",
    }
    for name, data in seeds.items():
        write("cel_filter", name, data)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--protoc", default="protoc")
    args = ap.parse_args()
    authority_seeds()
    header_seeds()
    connect_seeds()
    h2_seeds()
    http1_seeds()
    config_seeds()
    waypoint_config_seeds()
    tls_seeds()
    proxy_v2_seeds()
    dns_seeds()
    trace_context_seeds()
    cel_filter_seeds()
    proto_seeds(args.protoc)
    authorization_seeds(args.protoc)


if __name__ == "__main__":
    main()
