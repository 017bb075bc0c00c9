#include "tools/lazyblobd_config.h"

#include <toml++/toml.h>
#include <CLI/CLI.hpp>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <functional>
#include <map>

#include "tools/byte_size.h"
#include "tools/tool_version.h"

namespace lazyblob {

Status DaemonConfig::Validate() const {
  if (store_dir.empty() && !origin.enabled()) {
    return InvalidArgument("--store must not be empty (it is optional only with --origin)");
  }
  if (sim_socket.empty() && cache_dir.empty()) {
    return InvalidArgument(
        "--cache-dir is required (the cachefiles cache directory, on ext4 or xfs)");
  }
  if (worker_threads < 0) return InvalidArgument("--threads must be >= 0");
  if (metrics_blob_series < 0) return InvalidArgument("--metrics-blob-series must be >= 0");
  if (stop_timeout_s < 1) return InvalidArgument("--stop-timeout must be at least 1 second");
  if (read_crash_limit < 0) return InvalidArgument("--read-crash-limit must be >= 0");
  if (read_crash_window_s < 1) {
    return InvalidArgument("--read-crash-window must be at least 1 second");
  }
  if (frontend != "auto" && frontend != "cachefiles" && frontend != "fanotify") {
    return InvalidArgument("--frontend must be cachefiles, fanotify or auto");
  }
  if (!sim_socket.empty() && frontend == "fanotify") {
    return InvalidArgument(
        "--sim-socket simulates cachefiles: it needs --frontend cachefiles or auto");
  }
  LB_RETURN_IF_ERROR(origin.Validate());
  if (log_level != "debug" && log_level != "info" && log_level != "warn" && log_level != "error" &&
      log_level != "off") {
    return InvalidArgument("--log-level must be debug, info, warn, error or off, not '" +
                           log_level + "'");
  }
  if (log_format != "text" && log_format != "json") {
    return InvalidArgument("--log-format must be text or json, not '" + log_format + "'");
  }
  if (trace_record_s < 0 || trace_record_s > 3600) {
    return InvalidArgument("--trace-record must be 0 to 3600 seconds");
  }
  if (trace_replay_stop_after < 0) {
    return InvalidArgument("--trace-replay-stop-after must be >= 0");
  }
  if (Status s = engine().Validate(); !s.ok()) {
    return InvalidArgument("engine settings: " + s.message());
  }
  return Status();
}

EngineOptions DaemonConfig::engine() const {
  EngineOptions eo;
  eo.worker_threads = worker_threads;
  eo.write_ahead_bytes = write_ahead_bytes;
  eo.chunk_cache_bytes = chunk_cache_bytes;
  eo.prefetch_on_open = prefetch_on_open;
  // A registry's window costs round trips: answer first, write it after.
  eo.write_ahead_async = origin.enabled();
  // The trace store itself is the worker's to open (TraceDir on trace_dir_base()).
  eo.trace.record_window = std::chrono::milliseconds(std::llround(trace_record_s * 1000));
  eo.trace.replay = trace_replay;
  eo.trace.replay_bytes_per_second = trace_replay_bandwidth;
  eo.trace.record_write_ahead_bytes = trace_record_write_ahead;
  eo.trace.replay_stop_after_off_record = trace_replay_stop_after;
  return eo;
}

std::string DaemonConfig::trace_dir_base() const {
  return !store_dir.empty() ? store_dir : origin.cache_dir;
}

ReloadableFlags& GivenAsFlags() {
  static ReloadableFlags flags;
  return flags;
}

namespace {

// ---- the config file --------------------------------------------------------------------

enum class Kind { kString, kInt, kBool, kSize, kSeconds };

struct KeySpec {
  Kind kind;
  const char* flag;  // the flag that wins over the key
  std::function<void(DaemonConfig&, const toml::node&)> apply;
};

const std::map<std::string, KeySpec>& Keys() {
  using C = DaemonConfig;
  auto str = [](std::string C::*field) {
    return [field](C& c, const toml::node& n) { c.*field = *n.value<std::string>(); };
  };
  auto integer = [](int C::*field) {
    return [field](C& c, const toml::node& n) {
      c.*field = static_cast<int>(*n.value<std::int64_t>());
    };
  };
  auto boolean = [](bool C::*field) {
    return [field](C& c, const toml::node& n) { c.*field = *n.value<bool>(); };
  };
  auto origin_str = [](std::string OriginConfig::*field) {
    return [field](C& c, const toml::node& n) { c.origin.*field = *n.value<std::string>(); };
  };
  auto origin_size = [](std::uint64_t OriginConfig::*field) {
    return [field](C& c, const toml::node& n) {
      if (auto s = n.value<std::string>()) {
        c.origin.*field = *ParseByteSize(*s);
      } else {
        c.origin.*field = static_cast<std::uint64_t>(*n.value<std::int64_t>());
      }
    };
  };
  // Sizes are checked by Check() first; here they are known to parse.
  auto size = [](std::uint64_t C::*field) {
    return [field](C& c, const toml::node& n) {
      if (auto s = n.value<std::string>()) {
        c.*field = *ParseByteSize(*s);
      } else {
        c.*field = static_cast<std::uint64_t>(*n.value<std::int64_t>());
      }
    };
  };
  static const std::map<std::string, KeySpec> keys = {
      {"store", {Kind::kString, "--store", str(&C::store_dir)}},
      {"cache_dir", {Kind::kString, "--cache-dir", str(&C::cache_dir)}},
      {"device", {Kind::kString, "--device", str(&C::device_path)}},
      {"sim_socket", {Kind::kString, "--sim-socket", str(&C::sim_socket)}},  // tests only
      {"metrics_listen", {Kind::kString, "--metrics-listen", str(&C::metrics_listen)}},
      {"metrics_blob_series",
       {Kind::kInt, "--metrics-blob-series", integer(&C::metrics_blob_series)}},
      {"log_level", {Kind::kString, "--log-level", str(&C::log_level)}},
      {"log_format", {Kind::kString, "--log-format", str(&C::log_format)}},
      {"threads", {Kind::kInt, "--threads", integer(&C::worker_threads)}},
      {"write_ahead", {Kind::kSize, "--write-ahead", size(&C::write_ahead_bytes)}},
      {"chunk_cache", {Kind::kSize, "--chunk-cache", size(&C::chunk_cache_bytes)}},
      {"prefetch", {Kind::kBool, "--prefetch", boolean(&C::prefetch_on_open)}},
      {"supervisor", {Kind::kBool, "--no-supervisor", boolean(&C::supervisor)}},
      {"stop_timeout", {Kind::kInt, "--stop-timeout", integer(&C::stop_timeout_s)}},
      {"read_crash_limit", {Kind::kInt, "--read-crash-limit", integer(&C::read_crash_limit)}},
      {"read_crash_window", {Kind::kInt, "--read-crash-window", integer(&C::read_crash_window_s)}},
      {"frontend", {Kind::kString, "--frontend", str(&C::frontend)}},
      {"control_socket", {Kind::kString, "--control-socket", str(&C::control_socket)}},
      // The [origin] table (tools/lazyblobd_origin_config.h), as dotted keys.
      {"origin.registry", {Kind::kString, "--origin", origin_str(&OriginConfig::registry)}},
      {"origin.cache_dir", {Kind::kString, "--origin-cache", origin_str(&OriginConfig::cache_dir)}},
      {"origin.auth_file",
       {Kind::kString, "--origin-auth-file", origin_str(&OriginConfig::auth_file)}},
      {"origin.ca_file", {Kind::kString, "--origin-ca-file", origin_str(&OriginConfig::ca_file)}},
      {"origin.timeout",
       {Kind::kSeconds, "--origin-timeout",
        [](C& c, const toml::node& n) { c.origin.timeout_s = *n.value<double>(); }}},
      {"origin.retries",
       {Kind::kInt, "--origin-retries",
        [](C& c, const toml::node& n) {
          c.origin.retries = static_cast<int>(*n.value<std::int64_t>());
        }}},
      {"origin.max_request",
       {Kind::kSize, "--origin-max-request", origin_size(&OriginConfig::max_request_bytes)}},
      {"origin.cache_size",
       {Kind::kSize, "--origin-cache-size", origin_size(&OriginConfig::cache_bytes)}},
      {"origin.ahead_requests",
       {Kind::kInt, "--origin-ahead-requests",
        [](C& c, const toml::node& n) {
          c.origin.ahead_requests = static_cast<int>(*n.value<std::int64_t>());
        }}},
      // The [trace] table: recording and replaying what a start reads.
      {"trace.record",
       {Kind::kSeconds, "--trace-record",
        [](C& c, const toml::node& n) { c.trace_record_s = *n.value<double>(); }}},
      {"trace.record_write_ahead",
       {Kind::kSize, "--trace-record-write-ahead", size(&C::trace_record_write_ahead)}},
      {"trace.replay", {Kind::kBool, "--no-trace-replay", boolean(&C::trace_replay)}},
      {"trace.replay_bandwidth",
       {Kind::kSize, "--trace-replay-bandwidth", size(&C::trace_replay_bandwidth)}},
      {"trace.replay_stop_after",
       {Kind::kInt, "--trace-replay-stop-after", integer(&C::trace_replay_stop_after)}},
  };
  return keys;
}

std::string Where(const std::string& path, const toml::source_region& r) {
  return path + ":" + std::to_string(r.begin.line) + ":" + std::to_string(r.begin.column);
}

const char* KindName(Kind k) {
  switch (k) {
    case Kind::kString:
      return "a string";
    case Kind::kInt:
      return "an integer";
    case Kind::kBool:
      return "true or false";
    case Kind::kSize:
      return "a size (\"64M\" or a byte count)";
    case Kind::kSeconds:
      return "a number of seconds";
  }
  return "?";
}

const char* TypeName(const toml::node& n) {
  switch (n.type()) {
    case toml::node_type::string:
      return "a string";
    case toml::node_type::integer:
      return "an integer";
    case toml::node_type::floating_point:
      return "a float";
    case toml::node_type::boolean:
      return "a boolean";
    case toml::node_type::table:
      return "a table";
    case toml::node_type::array:
      return "an array";
    default:
      return "a date or time";
  }
}

// Levenshtein distance, for "did you mean".
std::size_t Distance(const std::string& a, const std::string& b) {
  std::vector<std::size_t> row(b.size() + 1);
  for (std::size_t j = 0; j <= b.size(); ++j) row[j] = j;
  for (std::size_t i = 1; i <= a.size(); ++i) {
    std::size_t diag = row[0];
    row[0] = i;
    for (std::size_t j = 1; j <= b.size(); ++j) {
      const std::size_t up = row[j];
      row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] == b[j - 1] ? 0 : 1)});
      diag = up;
    }
  }
  return row[b.size()];
}

std::string UnknownKey(const std::string& key) {
  std::string best;
  std::size_t best_d = 3;
  std::string known;
  for (const auto& [name, spec] : Keys()) {
    if (name == "sim_socket") continue;  // not for users
    if (!known.empty()) known += ", ";
    known += name;
    const std::size_t d = Distance(key, name);
    if (d < best_d) best_d = d, best = name;
  }
  std::string msg = "unknown key '" + key + "'";
  if (!best.empty()) return msg + " (did you mean '" + best + "'?)";
  return msg + " (known keys: " + known + ")";
}

// The problem with `n` as the value of a key of kind `k`, or "" when it is fine.
std::string CheckValue(const std::string& key, Kind k, const toml::node& n) {
  const std::string want = "'" + key + "' must be " + KindName(k) + ", not " + TypeName(n);
  switch (k) {
    case Kind::kString:
      return n.is_string() ? "" : want;
    case Kind::kBool:
      return n.is_boolean() ? "" : want;
    case Kind::kInt:
      if (!n.is_integer()) return want;
      if (*n.value<std::int64_t>() < 0) return "'" + key + "' must not be negative";
      if (*n.value<std::int64_t>() > 1'000'000) return "'" + key + "' is too large";
      return "";
    case Kind::kSeconds:
      if (!n.is_number()) return want;
      return *n.value<double>() < 0 ? "'" + key + "' must not be negative" : "";
    case Kind::kSize:
      if (n.is_integer()) {
        return *n.value<std::int64_t>() < 0 ? "'" + key + "' must not be negative" : "";
      }
      if (!n.is_string()) return want;
      if (auto v = ParseByteSize(*n.value<std::string>()); !v.ok()) {
        return "'" + key + "': " + v.status().message();
      }
      return "";
  }
  return "";
}

// Reads `path` and applies every key whose flag `given` does not report. Returns one
// "FILE:LINE:COL: problem" per problem; nothing is applied when there is any.
std::vector<std::string> ApplyConfigFile(const std::string& path,
                                         const std::function<bool(const char*)>& given,
                                         DaemonConfig* c, bool* store_given = nullptr) {
  toml::table t;
  try {
    t = toml::parse_file(path);
  } catch (const toml::parse_error& e) {
    if (e.source().begin.line == 0) return {path + ": " + std::string(e.description())};
    return {Where(path, e.source()) + ": " + std::string(e.description())};
  }
  // Every key, the [origin] and [trace] tables' as "origin.KEY" / "trace.KEY", with where
  // it stands.
  struct Entry {
    std::string name;
    const toml::key* key;
    const toml::node* node;
  };
  std::vector<Entry> entries;
  for (auto&& [key, node] : t) {
    if ((key.str() == "origin" || key.str() == "trace") && node.is_table()) {
      for (auto&& [sub, value] : *node.as_table()) {
        entries.push_back({std::string(key.str()) + "." + std::string(sub.str()), &sub, &value});
      }
    } else {
      entries.push_back({std::string(key.str()), &key, &node});
    }
  }
  // Keyed by position, so the problems come out in file order.
  std::map<std::pair<std::uint32_t, std::uint32_t>, std::string> found;
  for (const Entry& e : entries) {
    const std::string& name = e.name;
    const toml::key& key = *e.key;
    const toml::node& node = *e.node;
    auto it = Keys().find(name);
    const toml::source_region& at = it == Keys().end() ? key.source() : node.source();
    std::string problem =
        it == Keys().end() ? UnknownKey(name) : CheckValue(name, it->second.kind, node);
    if (!problem.empty()) {
      found[{at.begin.line, at.begin.column}] = Where(path, at) + ": " + problem;
    }
  }
  std::vector<std::string> problems;
  for (auto& [pos, problem] : found) problems.push_back(std::move(problem));
  if (!problems.empty()) return problems;
  for (const Entry& e : entries) {
    const KeySpec& spec = Keys().at(e.name);
    if (e.name == "store" && store_given != nullptr) *store_given = true;
    if (!given(spec.flag)) spec.apply(*c, *e.node);
  }
  return {};
}

// ---- the command line -------------------------------------------------------------------

constexpr const char* kFooter = R"(How it works:
  A supervisor opens /dev/cachefiles (dir, tag, bind ondemand) and keeps that fd for its
  whole life; a forked worker serves OPEN/READ/CLOSE from the store. If the worker dies
  the supervisor starts a new one, which writes `restore`: the kernel re-sends the open
  objects and pending READs, so readers see no error. Under systemd (Type=notify) the fd
  also goes into the fd store (FDSTORE=1), so a restarted service gets it back.
  Before the device is opened, the config, the flags, the store, the metrics address and
  the device (the cachefiles character device) are checked: a broken start exits 2 at once
  and touches nothing. --check-config does only these checks.

Mounting a blob (its id in the store is the EROFS fsid):
  lazyblob --store /var/lib/lazyblob import image.erofs --id myimage
  lazyblobd --store /var/lib/lazyblob --cache-dir /var/cache/lazyblob/fscache &
  mount -t erofs none -o fsid=myimage /mnt                  # cachefiles
  lazyblob mount myimage /mnt                               # fanotify

Serving from a registry (what `lazyblob push` published; only fetched ranges are sent):
  lazyblobd --origin registry.example.com/lazy --origin-cache /var/lib/lazyblob/origin \
            --cache-dir /var/cache/lazyblob/fscache
  mount -t erofs none -o fsid=app-v1 /mnt

Front ends (--frontend): cachefiles serves the kernel's cachefiles on-demand mode; fanotify
keeps one sparse file per blob in the cache dir (ext4/xfs/btrfs, not tmpfs), fills it on
fanotify pre-content events and leaves the mount itself to 'lazyblob mount'. auto picks
cachefiles when /dev/cachefiles exists and binds in on-demand mode, else fanotify, and logs
why. On SIGTERM the fanotify front end unmounts its mounts; a busy mount stays mounted with
its files completed first, so it reads correct bytes without the daemon.

Examples:
  lazyblobd --store /var/lib/lazyblob --cache-dir /srv/fscache --metrics-listen 127.0.0.1:9150
  lazyblobd --config /etc/lazyblob/lazyblobd.toml --log-level debug
  lazyblobd --config /etc/lazyblob/lazyblobd.toml --check-config

Signals: SIGTERM/SIGINT finish and answer every request in flight, then exit 0; a worker
  that has not stopped after --stop-timeout seconds is killed (SIGKILL).
  SIGHUP re-reads the config file: log level, write-ahead, and the store gauges.
Logs go to stderr (journald-friendly under systemd); a line repeated many times a second
  is shown 10 times per 5 s, then summarized with the count of lines suppressed.
Exit status: 0 clean stop or config OK, 2 bad flags, config, store, metrics address or
  device, 3 the device failed; other failures 1.
The cache dir must be on ext4 or xfs (cachefiles refuses tmpfs); the kernel needs
CONFIG_CACHEFILES_ONDEMAND and CONFIG_EROFS_FS_ONDEMAND (Linux >= 5.19).)";

void AddOptions(CLI::App& app, DaemonConfig& c, std::string& write_ahead, std::string& chunk_cache,
                bool& no_supervisor) {
  app.add_option("--store", c.store_dir, "Chunk store directory (opened read-only)");
  app.add_option("--cache-dir", c.cache_dir, "cachefiles cache directory (ext4/xfs)");
  app.add_option("--device", c.device_path, "cachefiles device");
  // Test-only: serve a KernelSimulator (tests/) instead of the kernel. Hidden from users.
  app.add_option("--sim-socket", c.sim_socket, "")->group("");
  app.add_option("--config", c.config_file, "TOML config file; flags win over it");
  app.add_flag("--check-config", c.check_config,
               "Check the config, the flags, the store, the metrics address and the device, "
               "print what would be served, and exit (0 ok, 2 not)");
  app.add_option("--threads", c.worker_threads,
                 "Request worker threads (0 = 4 per hardware thread, at least 8)");
  app.add_option("--write-ahead", write_ahead,
                 "Bytes of following chunks written with each READ (K/M/G); doubles for "
                 "each sequential READ, up to 8x; 0 = off");
  app.add_option("--chunk-cache", chunk_cache, "Decompressed chunk cache size (K/M/G)");
  app.add_flag("--prefetch", c.prefetch_on_open, "Prefetch each blob in the background at OPEN");
  app.add_option("--metrics-listen", c.metrics_listen,
                 "Serve Prometheus /metrics on IPV4:PORT, e.g. 127.0.0.1:9150 (empty: off). "
                 "IPv6 is not supported by Debian 12's civetweb");
  app.add_option("--metrics-blob-series", c.metrics_blob_series,
                 "At most this many lazyblob_open_blob{blob=...} series (0: none)");
  app.add_option("--log-level", c.log_level, "debug, info, warn, error or off");
  app.add_option("--log-format", c.log_format, "text, or json (one JSON object per line)");
  app.add_option("--stop-timeout", c.stop_timeout_s,
                 "Seconds a stopping worker gets to answer what is in flight before SIGKILL");
  app.add_option("--read-crash-limit", c.read_crash_limit,
                 "Fail (EIO) a READ that was in flight at this many worker crashes within "
                 "--read-crash-window, instead of serving it again (0: never)");
  app.add_option("--read-crash-window", c.read_crash_window_s,
                 "Seconds over which worker crashes are counted for --read-crash-limit");
  app.add_option("--frontend", c.frontend,
                 "cachefiles (/dev/cachefiles on-demand), fanotify (EROFS file-backed mounts "
                 "filled on pre-content events, Linux >= 6.14, mounted with 'lazyblob mount') "
                 "or auto (cachefiles when /dev/cachefiles binds in on-demand mode)");
  app.add_flag("--fanotify-keep-marks", c.keep_marks,
               "Keep complete files marked (benchmarks: the cost of a mark)")
      ->group("");
  app.add_option("--control-socket", c.control_socket,
                 "fanotify: the socket 'lazyblob mount' talks to (root only, mode 0600)");
  app.add_option("--trace-record", c.trace_record_s,
                 "Record the chunks each blob reads in this many seconds after OPEN, when it "
                 "has no record yet (0: off)");
  app.add_option("--trace-replay-stop-after", c.trace_replay_stop_after,
                 "Stop a replay after this many reads off its record (0: never)");
  app.add_flag("--no-supervisor", no_supervisor,
               "Run the worker in this process (no restart; the device closes with it)");
  app.set_version_flag("--version", "lazyblobd " + ToolVersion(), "Print the version and exit");
}

}  // namespace

ParsedArgs ParseDaemonArgs(int argc, char** argv) {
  ParsedArgs out;
  DaemonConfig& c = out.config;
  CLI::App app{
      "lazyblobd: serves EROFS blobs from a lazyblob chunk store to the kernel's "
      "cachefiles on-demand mode",
      "lazyblobd"};
  app.option_defaults()->always_capture_default();
  app.footer(kFooter);
  std::string write_ahead = std::to_string(c.write_ahead_bytes);
  std::string chunk_cache = std::to_string(c.chunk_cache_bytes);
  bool no_supervisor = false;
  AddOptions(app, c, write_ahead, chunk_cache, no_supervisor);
  std::string replay_bandwidth = "0";
  std::string record_write_ahead = std::to_string(c.trace_record_write_ahead);
  bool no_trace_replay = false;
  app.add_option("--trace-record-write-ahead", record_write_ahead,
                 "While a blob is recorded, demand write-ahead windows start from at most this "
                 "many bytes (K/M/G): the record keeps what is written ahead, and every "
                 "replaying node fetches it");
  app.add_option("--trace-replay-bandwidth", replay_bandwidth,
                 "Bytes per second a replay may write ahead of demand, and fetch ahead from "
                 "--origin (K/M/G; 0: unbounded)");
  app.add_flag("--no-trace-replay", no_trace_replay, "Do not replay access records at OPEN");
  OriginFlagText origin_text;
  AddOriginFlags(app, &c.origin, &origin_text);
  const auto fail = [&](const std::string& message) {
    std::fprintf(stderr, "lazyblobd: %s\n", message.c_str());
    out.exit_code = 2;
    return out;
  };
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    if (e.get_exit_code() == 0) {  // --help, --version
      out.exit_code = app.exit(e);
      return out;
    }
    return fail(std::string(e.what()) + " (see 'lazyblobd --help')");
  }
  if (app.count("--write-ahead") != 0) {
    auto v = ParseByteSize(write_ahead);
    if (!v.ok()) return fail("--write-ahead: " + v.status().message());
    c.write_ahead_bytes = *v;
  }
  if (app.count("--chunk-cache") != 0) {
    auto v = ParseByteSize(chunk_cache);
    if (!v.ok()) return fail("--chunk-cache: " + v.status().message());
    c.chunk_cache_bytes = *v;
  }
  if (Status o = FinishOriginFlags(app, origin_text, &c.origin); !o.ok()) {
    return fail(o.message());
  }
  if (app.count("--trace-replay-bandwidth") != 0) {
    auto v = ParseByteSize(replay_bandwidth);
    if (!v.ok()) return fail("--trace-replay-bandwidth: " + v.status().message());
    c.trace_replay_bandwidth = *v;
  }
  if (app.count("--trace-record-write-ahead") != 0) {
    auto v = ParseByteSize(record_write_ahead);
    if (!v.ok()) return fail("--trace-record-write-ahead: " + v.status().message());
    c.trace_record_write_ahead = *v;
  }
  if (no_trace_replay) c.trace_replay = false;
  if (no_supervisor) c.supervisor = false;
  GivenAsFlags().log_level = app.count("--log-level") != 0;
  GivenAsFlags().write_ahead = app.count("--write-ahead") != 0;
  bool store_given = app.count("--store") != 0;
  if (!c.config_file.empty()) {
    const auto given = [&](const char* flag) { return app.count(flag) != 0; };
    std::vector<std::string> problems = ApplyConfigFile(c.config_file, given, &c, &store_given);
    if (!problems.empty()) {
      for (std::size_t i = 0; i + 1 < problems.size(); ++i) {
        std::fprintf(stderr, "lazyblobd: %s\n", problems[i].c_str());
      }
      return fail(problems.back());
    }
  }
  // With an origin, a node may have no store of its own: the default one is not assumed.
  if (c.origin.enabled() && !store_given) c.store_dir.clear();
  if (Status s = c.Validate(); !s.ok()) return fail(s.message());
  return out;
}

Status ReloadConfig(DaemonConfig* config, const ReloadableFlags& given_as_flags) {
  if (config->config_file.empty()) return Status();
  DaemonConfig fresh = *config;
  // Only the reloadable keys are taken; the flags that won at start still win.
  const auto given = [&](const char* flag) {
    const std::string f(flag);
    if (f == "--log-level") return given_as_flags.log_level;
    if (f == "--write-ahead") return given_as_flags.write_ahead;
    return true;
  };
  std::vector<std::string> problems = ApplyConfigFile(config->config_file, given, &fresh);
  if (!problems.empty()) {
    std::string all;
    for (const std::string& p : problems) all += (all.empty() ? "" : "; ") + p;
    return InvalidArgument(all);
  }
  LB_RETURN_IF_ERROR(fresh.Validate());
  config->log_level = fresh.log_level;
  config->write_ahead_bytes = fresh.write_ahead_bytes;
  return Status();
}

}  // namespace lazyblob
