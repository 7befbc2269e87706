// DNS proxy metrics, declared once (ztunnel's names and labels, ISTIO-COMPAT
// §8.2), sharded per worker:
//   istio_dns_requests_total                      every query with a question
//   istio_dns_upstream_requests_total             queries forwarded upstream
//   istio_dns_upstream_failures_total             forwarded queries with no answer
//   istio_dns_upstream_request_duration_seconds   forward round trip (histogram)
// labels request_query_type ("a", "aaaa", ...), request_protocol ("udp",
// "tcp"), source_canonical_service, source_canonical_revision ("unknown" when
// empty); plus ambit_dns_rejected_requests_total{reason} for queries
// answered FORMERR/NOTIMP (reason = ParseErrorName) or dropped (too_short,
// overload).
#pragma once

#include <string_view>

#include "agent/dns/message.h"
#include "common/metrics/registry.h"

namespace ambit::dns {

struct DnsLabels {
  std::string_view query_type = "unknown";
  bool tcp = false;
  std::string_view canonical_service;
  std::string_view canonical_revision;
};

class DnsMetrics {
 public:
  explicit DnsMetrics(metrics::Registry& registry);

  void Request(size_t shard, const DnsLabels& l);
  void UpstreamRequest(size_t shard, const DnsLabels& l);
  void UpstreamFailure(size_t shard, const DnsLabels& l);
  void UpstreamDuration(size_t shard, const DnsLabels& l, double seconds);
  // A query not served: a ParseErrorName() or "overload".
  void Rejected(size_t shard, std::string_view reason);

 private:
  metrics::CounterFamily& requests_;
  metrics::CounterFamily& upstream_requests_;
  metrics::CounterFamily& upstream_failures_;
  metrics::HistogramFamily& upstream_duration_;
  metrics::CounterFamily& rejected_;
};

}  // namespace ambit::dns
