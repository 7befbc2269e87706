"""The PromQL behind Istio's Grafana dashboards (istio/istio
manifests/addons/dashboards: istio-workload-dashboard.json,
istio-service-dashboard.json, istio-mesh-dashboard.gen.json), written for
test_observability_prometheus.py: per panel the same metric, label matchers,
aggregation and functions, with the dashboard variables substituted for the
test's topology. Facts about the interface, not a copy of the JSON.
"""

ECHO = "echo.demo.svc.cluster.local"       # HTTP + gRPC service behind the waypoint
TCPSVC = "tcp-echo.demo.svc.cluster.local"  # TCP service, no waypoint
RI = "30s"  # $__rate_interval (Grafana: >= 4 scrape intervals; we scrape every 1 s)


def dur(q, metric_sel, by=""):
    """The dashboards' duration panels: ms histogram / 1000, or a seconds one."""
    b = f"{by}, le" if by else "le"
    return (f"(histogram_quantile({q}, sum(irate(istio_request_duration_milliseconds_bucket"
            f"{metric_sel}[{RI}])) by ({b})) / 1000) or histogram_quantile({q}, "
            f"sum(irate(istio_request_duration_seconds_bucket{metric_sel}[{RI}])) by ({b}))")


def panels():
    """(dashboard / panel, PromQL, kind) with the dashboard variables substituted:
    namespace demo; HTTP workload echo / service echo with qrep=waypoint (the
    reporter Istio's own waypoint uses; qrep is a regex variable); TCP workload
    sink / service tcp-echo with qrep=destination (the default); All = .*.
    kind: "pos" = some value > 0; "ratio" = all in [0, 1], one strictly between
    (the traffic has 5xx); "finite" = some finite value > 0 (quantiles)."""
    out = []
    add = lambda name, q, kind="any": out.append((name, q, kind))  # noqa: E731
    # Workload dashboard, HTTP (workload=echo, qrep=waypoint).
    d = 'destination_workload_namespace=~"demo",destination_workload=~"echo"'
    r = 'reporter=~"waypoint"'
    src = 'source_workload=~".*", source_workload_namespace=~".*"'
    add("workload/Incoming Request Volume",
        f'round(sum(irate(istio_requests_total{{{r},{d}}}[{RI}])), 0.001)', "pos")
    add("workload/Incoming Success Rate (non-5xx responses)",
        f'sum(irate(istio_requests_total{{{r},{d},response_code!~"5.*"}}[{RI}])) / '
        f'sum(irate(istio_requests_total{{{r},{d}}}[{RI}]))', "ratio")
    for q in ("0.50", "0.90", "0.99"):
        add(f"workload/Request Duration p{q[2:]}", dur(q, f"{{{r},{d}}}"), "finite")
    for pol in ('connection_security_policy="mutual_tls"',):
        sel = f"{{{pol}, {d}, {r}, {src}}}"
        add("workload/Incoming Requests By Source And Response Code (mTLS)",
            f"round(sum(irate(istio_requests_total{sel}[{RI}])) by (source_workload, "
            f"source_workload_namespace, response_code), 0.001)", "pos")
        add("workload/Incoming Success Rate (non-5xx responses) By Source (mTLS)",
            f'sum(irate(istio_requests_total{{{r}, {pol}, {d},response_code!~"5.*", {src}}}'
            f'[{RI}])) by (source_workload, source_workload_namespace) / '
            f"sum(irate(istio_requests_total{sel}[{RI}])) by (source_workload, "
            f"source_workload_namespace)", "ratio")
        add("workload/Incoming Request Duration By Source (mTLS) p99",
            dur("0.99", sel, "source_workload, source_workload_namespace"), "finite")
        for m, title in (("istio_request_bytes", "Incoming Request Size By Source"),
                         ("istio_response_bytes", "Response Size By Source")):
            add(f"workload/{title} (mTLS) p99",
                f"histogram_quantile(0.99, sum(irate({m}_bucket{sel}[{RI}])) by "
                f"(source_workload, source_workload_namespace, le))", "finite")
    # Workload dashboard, TCP (workload=sink server side, client client side).
    for rep, wl, side in (("destination", "sink", "destination"), ("source", "client", "source")):
        sel = (f'{{reporter=~"{rep}", {side}_workload_namespace=~"demo", '
               f'{side}_workload=~"{wl}"}}')
        title = "TCP Server Traffic" if side == "destination" else "TCP Client Traffic"
        add(f"workload/{title} (qrep={rep}, workload={wl})",
            f"sum(irate(istio_tcp_sent_bytes_total{sel}[{RI}])) + "
            f"sum(irate(istio_tcp_received_bytes_total{sel}[{RI}]))", "pos")
    d = 'destination_workload_namespace=~"demo", destination_workload=~"sink"'
    for pol, tag in (('connection_security_policy="mutual_tls"', "mTLS"),
                     ('connection_security_policy!="mutual_tls"', "plaintext")):
        for m, title in (("istio_tcp_received_bytes_total", "Bytes Received from Incoming TCP Connection"),
                         ("istio_tcp_sent_bytes_total", "Bytes Sent to Incoming TCP Connection")):
            add(f"workload/{title} ({tag})",
                f'round(sum(irate({m}{{reporter=~"destination", {pol}, {d}, {src}}}[{RI}])) '
                f"by (source_workload, source_workload_namespace), 0.001)", "pos")
        o = ('reporter="source", source_workload_namespace=~"demo", source_workload=~"client", '
             'destination_service=~".*"')
        for m, title in (("istio_tcp_received_bytes_total", "Bytes Sent on Outgoing TCP Connection"),
                         ("istio_tcp_sent_bytes_total", "Bytes Received from Outgoing TCP Connection")):
            add(f"workload/{title} ({tag}, workload=client)",
                f"round(sum(irate({m}{{{pol}, {o}}}[{RI}])) by (destination_service), 0.001)", "pos")
    # Service dashboard, HTTP (service=echo, qrep=waypoint).
    s = f'reporter=~"waypoint",destination_service="{ECHO}"'
    add("service/Client Request Volume",
        f"round(sum(irate(istio_requests_total{{{s}}}[{RI}])), 0.001)", "pos")
    add("service/Client Success Rate (non-5xx responses)",
        f'sum(irate(istio_requests_total{{{s},response_code!~"5.*"}}[{RI}])) / '
        f"(sum(irate(istio_requests_total{{{s}}}[{RI}])) or on () vector(1))", "ratio")
    add("service/Client Request Duration p99", dur("0.99", f"{{{s}}}"), "finite")
    sel = f'{{connection_security_policy="mutual_tls",{s},{src}}}'
    add("service/Incoming Requests By Source And Response Code (mTLS)",
        f"round(sum(irate(istio_requests_total{sel}[{RI}])) by (source_workload, "
        f"source_workload_namespace, response_code), 0.001)", "pos")
    add("service/Incoming Success Rate (non-5xx responses) By Source (mTLS)",
        f'sum(irate(istio_requests_total{{{s}, connection_security_policy="mutual_tls", '
        f'response_code!~"5.*", {src}}}[{RI}])) by (source_workload, source_workload_namespace)'
        f" / sum(irate(istio_requests_total{sel}[{RI}])) by (source_workload, "
        f"source_workload_namespace)", "ratio")
    add("service/Incoming Request Duration By Source (mTLS) p99",
        dur("0.99", sel, "source_workload, source_workload_namespace"), "finite")
    for m, title in (("istio_request_bytes", "Incoming Request Size By Source"),
                     ("istio_response_bytes", "Response Size By Source")):
        add(f"service/{title} (mTLS) p99",
            f"histogram_quantile(0.99, sum(irate({m}_bucket{sel}[{RI}])) by "
            f"(source_workload, source_workload_namespace, le))", "finite")
    # Service dashboard, TCP (service=tcp-echo, qrep=destination).
    t = f'reporter=~"destination", destination_service="{TCPSVC}"'
    add("service/TCP Received Bytes", f"sum(irate(istio_tcp_received_bytes_total{{{t}}}[{RI}]))", "pos")
    add("service/TCP Sent Bytes", f"sum(irate(istio_tcp_sent_bytes_total{{{t}}}[{RI}]))", "pos")
    dw = 'destination_workload=~".*", destination_workload_namespace=~".*"'
    for pol, tag in (('connection_security_policy="mutual_tls"', "mTLS"),
                     ('connection_security_policy!="mutual_tls"', "plaintext")):
        for m, title in (("istio_tcp_received_bytes_total", "Bytes Received from Incoming TCP Connection"),
                         ("istio_tcp_sent_bytes_total", "Bytes Sent to Incoming TCP Connection")):
            add(f"service/{title} by source ({tag})",
                f"round(sum(irate({m}{{{t}, {pol}, {src}}}[{RI}])) by (source_workload, "
                f"source_workload_namespace), 0.001)", "pos")
            add(f"service/{title} by destination workload ({tag})",
                f'round(sum(irate({m}{{reporter="destination", {pol}, destination_service='
                f'"{TCPSVC}", {dw}}}[{RI}])) by (destination_workload, '
                f"destination_workload_namespace), 0.001)", "pos")
    # Mesh dashboard (no variables).
    m = 'reporter=~"source|waypoint"'
    add("mesh/Traffic Volume", f"round(sum (rate(istio_requests_total{{{m}}}[{RI}])), 0.01)", "pos")
    add("mesh/Success Rate", f'sum (rate(istio_requests_total{{{m},response_code!~"5.."}}[{RI}])) / '
        f"sum (rate(istio_requests_total{{{m}}}[{RI}]))", "ratio")
    add("mesh/5xxs", f'round(sum (rate(istio_requests_total{{{m},response_code=~"5.."}}[{RI}])), '
        f"0.01)or vector(0)", "pos")
    lj = '"destination_workload_var", ".", "destination_workload", "destination_workload_namespace"'
    add("mesh/HTTP/gRPC Workloads (requests)",
        f"label_join(sum by (destination_workload,destination_workload_namespace,"
        f"destination_service) (rate(istio_requests_total{{{m}}}[{RI}])), {lj})", "pos")
    add("mesh/HTTP/gRPC Workloads (p50)",
        f"label_join(histogram_quantile(0.5, sum by (le,destination_workload,"
        f"destination_workload_namespace) (rate(istio_request_duration_milliseconds_bucket"
        f"{{{m}}}[{RI}]))), {lj})", "finite")
    add("mesh/HTTP/gRPC Workloads (success rate)",
        f'label_join(sum by (destination_workload,destination_workload_namespace) (rate('
        f'istio_requests_total{{{m},response_code!~"5.."}}[{RI}]))/sum by (destination_workload,'
        f"destination_workload_namespace) (rate(istio_requests_total{{{m}}}[{RI}])), {lj})", "ratio")
    for mt in ("istio_tcp_received_bytes_total", "istio_tcp_sent_bytes_total"):
        add(f"mesh/TCP Workloads ({mt})",
            f"label_join(sum by (destination_workload,destination_workload_namespace,"
            f"destination_service) (rate({mt}{{{m}}}[{RI}])), {lj})", "pos")
    return out


NOT_APPLICABLE = [
    ("service/Server Request Volume, Server Success Rate, Server Request Duration, Incoming "
     "Requests/Success Rate/Duration/Sizes By Destination Workload",
     'hard-coded reporter="destination" on istio_requests_*: only a sidecar reports that; in '
     'ambient mode Istio\'s own waypoint reports reporter="waypoint" (empty upstream too)'),
    ("workload/Outgoing Requests/Success Rate/Duration/Sizes By Destination",
     'hard-coded reporter="source" on istio_requests_*: a client sidecar; ztunnel and the agent '
     "are L4 (empty upstream too)"),
    ("workload+service/the connection_security_policy!=\"mutual_tls\" HTTP panels",
     "everything that reaches a waypoint arrives over HBONE (mTLS)"),
]


