#include "metrics/process_metrics.h"

#include <dirent.h>
#include <sys/resource.h>
#include <unistd.h>

#include <charconv>
#include <fstream>
#include <sstream>
#include <string>

namespace lazyblob {
namespace {

using prometheus::MetricFamily;
using prometheus::MetricType;

MetricFamily One(const char* name, const char* help, MetricType type, double value) {
  MetricFamily f;
  f.name = name;
  f.help = help;
  f.type = type;
  f.metric.emplace_back();
  if (type == MetricType::Counter) {
    f.metric.back().counter.value = value;
  } else {
    f.metric.back().gauge.value = value;
  }
  return f;
}

std::string ReadSmallFile(const char* path) {
  std::ifstream in(path);
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::optional<double> BootTimeSeconds() {
  std::istringstream in(ReadSmallFile("/proc/stat"));
  for (std::string key; in >> key;) {
    if (key == "btime") {
      double v = 0;
      if (in >> v) return v;
      return std::nullopt;
    }
    in.ignore(1 << 16, '\n');
  }
  return std::nullopt;
}

std::optional<double> OpenFds() {
  DIR* d = ::opendir("/proc/self/fd");
  if (d == nullptr) return std::nullopt;
  double n = 0;
  while (dirent* e = ::readdir(d)) {
    if (e->d_name[0] != '.') ++n;
  }
  ::closedir(d);
  return n - 1;  // the directory stream's own fd
}

}  // namespace

std::optional<ProcStat> ParseProcStat(std::string_view line) {
  const std::size_t paren = line.rfind(')');
  if (paren == std::string_view::npos) return std::nullopt;
  // After ") ": field 3 (state) is index 0; utime is field 14, stime 15, starttime 22,
  // vsize 23, rss 24 (proc(5)).
  std::istringstream in{std::string(line.substr(paren + 1))};
  std::string field;
  ProcStat s;
  for (int i = 3; i <= 24 && in >> field; ++i) {
    double v = 0;
    if (i >= 14) {
      auto [p, ec] = std::from_chars(field.data(), field.data() + field.size(), v);
      if (ec != std::errc()) return std::nullopt;
    }
    if (i == 14) s.utime_ticks = v;
    if (i == 15) s.stime_ticks = v;
    if (i == 22) s.starttime_ticks = v;
    if (i == 23) s.vsize_bytes = v;
    if (i == 24) {
      s.rss_pages = v;
      return s;
    }
  }
  return std::nullopt;
}

std::vector<MetricFamily> ProcessMetricFamilies() {
  std::vector<MetricFamily> out;
  const double ticks = static_cast<double>(::sysconf(_SC_CLK_TCK));
  const double page = static_cast<double>(::sysconf(_SC_PAGESIZE));
  if (auto st = ParseProcStat(ReadSmallFile("/proc/self/stat")); st && ticks > 0) {
    out.push_back(One("process_cpu_seconds_total",
                      "Total user and system CPU time spent in seconds.", MetricType::Counter,
                      (st->utime_ticks + st->stime_ticks) / ticks));
    if (auto btime = BootTimeSeconds()) {
      out.push_back(One("process_start_time_seconds",
                        "Start time of the process since unix epoch in seconds.", MetricType::Gauge,
                        *btime + st->starttime_ticks / ticks));
    }
    out.push_back(One("process_virtual_memory_bytes", "Virtual memory size in bytes.",
                      MetricType::Gauge, st->vsize_bytes));
    out.push_back(One("process_resident_memory_bytes", "Resident memory size in bytes.",
                      MetricType::Gauge, st->rss_pages * page));
  }
  if (auto fds = OpenFds()) {
    out.push_back(
        One("process_open_fds", "Number of open file descriptors.", MetricType::Gauge, *fds));
  }
  rlimit lim{};
  if (::getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur != RLIM_INFINITY) {
    out.push_back(One("process_max_fds", "Maximum number of open file descriptors.",
                      MetricType::Gauge, static_cast<double>(lim.rlim_cur)));
  }
  return out;
}

}  // namespace lazyblob
