#include "agent/dns/dns_metrics.h"

#include <string>

namespace ambit::dns {
namespace {

const metrics::Labels kLabelNames = {"request_query_type", "request_protocol",
                                     "source_canonical_service", "source_canonical_revision"};

std::string OrUnknown(std::string_view v) { return v.empty() ? "unknown" : std::string(v); }

metrics::Labels Values(const DnsLabels& l) {
  return {OrUnknown(l.query_type), l.tcp ? "tcp" : "udp", OrUnknown(l.canonical_service),
          OrUnknown(l.canonical_revision)};
}

}  // namespace

DnsMetrics::DnsMetrics(metrics::Registry& r)
    : requests_(r.AddCounter("istio_dns_requests", "Total number of DNS requests", kLabelNames)),
      upstream_requests_(r.AddCounter("istio_dns_upstream_requests",
                                      "Total number of DNS requests forwarded to upstream",
                                      kLabelNames)),
      upstream_failures_(r.AddCounter("istio_dns_upstream_failures",
                                      "Total number of DNS requests that failed to forward upstream",
                                      kLabelNames)),
      upstream_duration_(r.AddHistogram(
          "istio_dns_upstream_request_duration_seconds",
          "Total time in seconds Istio takes to get DNS response from upstream", kLabelNames,
          {0.0005, 0.001, 0.01, 0.1, 1.0, 5.0})),
      rejected_(r.AddCounter("ambit_dns_rejected_requests",
                             "DNS messages on 15053 answered FORMERR/NOTIMP or dropped, by reason",
                             {"reason"})) {}

void DnsMetrics::Request(size_t shard, const DnsLabels& l) { requests_.Get(shard, Values(l))->Inc(); }
void DnsMetrics::UpstreamRequest(size_t shard, const DnsLabels& l) {
  upstream_requests_.Get(shard, Values(l))->Inc();
}
void DnsMetrics::UpstreamFailure(size_t shard, const DnsLabels& l) {
  upstream_failures_.Get(shard, Values(l))->Inc();
}
void DnsMetrics::UpstreamDuration(size_t shard, const DnsLabels& l, double seconds) {
  upstream_duration_.Get(shard, Values(l))->Observe(seconds);
}
void DnsMetrics::Rejected(size_t shard, std::string_view reason) {
  rejected_.Get(shard, {std::string(reason)})->Inc();
}

}  // namespace ambit::dns
