#!/usr/bin/env python3
"""Feeds the exposition of ambit-metrics-sample to prometheus_client's strict parser."""
import subprocess, sys
from prometheus_client.parser import text_string_to_metric_families
from prometheus_client.openmetrics.parser import text_string_to_metric_families as om_parse

exe = sys.argv[1]
text = subprocess.run([exe], check=True, capture_output=True, text=True).stdout
fams = {f.name: f for f in text_string_to_metric_families(text)}
assert "istio_tcp_connections_opened" in fams or "istio_tcp_connections_opened_total" in fams, fams.keys()
samples = (fams.get("istio_tcp_connections_opened") or fams["istio_tcp_connections_opened_total"]).samples
assert samples[0].value == 3, samples
om = subprocess.run([exe, "--openmetrics"], check=True, capture_output=True, text=True).stdout
names = [f.name for f in om_parse(om)]
assert "istio_request_duration_milliseconds" in names, names
print("ok:", len(fams), "families")
