// Prints a sample exposition for the strict-parser test.
#include <cstdio>
#include <cstring>

#include "common/metrics/process.h"
#include "common/metrics/registry.h"

int main(int argc, char** argv) {
  using namespace ambit::metrics;
  Registry reg(2);
  auto& c = reg.AddCounter("istio_tcp_connections_opened", "Opened.", {"reporter", "source_principal"});
  c.Get(0, {"source", "spiffe://cluster.local/ns/a/sa/b"})->Inc(3);
  auto& h = reg.AddHistogram("istio_request_duration_milliseconds", "Duration.", {"reporter"},
                             IstioDurationBucketsMs());
  h.Get(1, {"destination"})->Observe(12.5);
  reg.AddGauge("istio_tcp_sockets_open", "Open sockets.", {"reporter"}).Get(0, {"source"})->Set(1);
  // Escaping: label values with a quote, a backslash and a line feed; HELP
  // text with a backslash and a line feed (promtool and the strict parsers).
  reg.AddCounter("ambit_sample_escapes", "Help with \\ backslash\nand a second line.",
                 {"value"})
      .Get(0, {"a \"quoted\" C:\\path\nnext"})
      ->Inc();
  // An overflowed family renders its overflow series with every label set.
  reg.set_max_series(1);
  auto& capped = reg.AddCounter("ambit_sample_capped", "Capped family.", {"k"});
  capped.Get(0, {"1"})->Inc();
  capped.Get(1, {"2"})->Inc();
  RegisterProcessMetrics(reg);
  bool om = argc > 1 && std::strcmp(argv[1], "--openmetrics") == 0;
  std::fputs(reg.Render(om).c_str(), stdout);
}
