// Process metrics read from /proc at scrape time: open fds, max fds, RSS, CPU.
#pragma once

namespace ambit::metrics {
class Registry;
// Registers process_open_fds, process_max_fds, process_resident_memory_bytes,
// process_cpu_seconds_total.
void RegisterProcessMetrics(Registry& registry);
}  // namespace ambit::metrics
