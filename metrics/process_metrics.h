// ProcessMetricFamilies: the standard process_* metrics that Prometheus' own client
// libraries export (prometheus-cpp does not), read from /proc/self at scrape time:
//
//   process_cpu_seconds_total      user + system CPU time        (/proc/self/stat)
//   process_start_time_seconds     start, seconds since the epoch (stat starttime + btime)
//   process_virtual_memory_bytes   virtual memory size            (/proc/self/stat vsize)
//   process_resident_memory_bytes  resident set size              (/proc/self/stat rss)
//   process_open_fds               open file descriptors          (/proc/self/fd)
//   process_max_fds                the RLIMIT_NOFILE soft limit
//
// A figure that cannot be read is left out, never reported as 0. In lazyblobd they
// describe the worker process, which serves /metrics.
//
// Thread-safety: may be called from any thread at once.
#ifndef LAZYBLOB_METRICS_PROCESS_METRICS_H_
#define LAZYBLOB_METRICS_PROCESS_METRICS_H_

#include <optional>
#include <string_view>
#include <vector>

#include "prometheus/metric_family.h"

namespace lazyblob {

std::vector<prometheus::MetricFamily> ProcessMetricFamilies();

// The parsed fields of a /proc/PID/stat line, for ProcessMetricFamilies and its tests.
struct ProcStat {
  double utime_ticks = 0, stime_ticks = 0, starttime_ticks = 0;
  double vsize_bytes = 0, rss_pages = 0;
};
// The comm field may hold spaces and parentheses: fields are counted after its last ')'.
std::optional<ProcStat> ParseProcStat(std::string_view line);

}  // namespace lazyblob

#endif  // LAZYBLOB_METRICS_PROCESS_METRICS_H_
