// DaemonConfig: everything lazyblobd is told, from flags and an optional TOML file (flags
// win). Parsing lives here; the supervisor and the worker only read the struct.
//
// The config file is strict: an unknown key, a value of the wrong type, a negative size or
// a TOML syntax error is reported as "FILE:LINE:COLUMN: what is wrong" and lazyblobd exits
// 2 instead of falling back to a default. Every usage error (bad flag, bad value, bad
// config) exits 2 too.
//
// Thread-safety: plain values; GivenAsFlags() is written once, before any thread starts.
#ifndef LAZYBLOB_TOOLS_LAZYBLOBD_CONFIG_H_
#define LAZYBLOB_TOOLS_LAZYBLOBD_CONFIG_H_

#include <cstdint>
#include <string>
#include <vector>

#include "core/request_engine.h"
#include "core/status.h"
#include "tools/lazyblobd_origin_config.h"

namespace lazyblob {

// The store both binaries use when none is given (`lazyblob --store`'s default too).
inline constexpr const char* kDefaultDaemonStore = "/var/lib/lazyblob";

struct DaemonConfig {
  // --store; empty after parsing only for an origin-only node (--origin, no --store).
  std::string store_dir = kDefaultDaemonStore;
  std::string cache_dir;                        // --cache-dir (required with a device)
  std::string device_path = "/dev/cachefiles";  // --device
  std::string sim_socket;   // hidden --sim-socket: a KernelSimulator instead (tests only)
  std::string config_file;  // --config
  // Engine settings start from the engine's own defaults, so they cannot drift apart.
  int worker_threads = EngineOptions{}.worker_threads;                  // --threads; 0 = engine's
  std::uint64_t write_ahead_bytes = EngineOptions{}.write_ahead_bytes;  // --write-ahead
  std::uint64_t chunk_cache_bytes = EngineOptions{}.chunk_cache_bytes;  // --chunk-cache
  bool prefetch_on_open = EngineOptions{}.prefetch_on_open;             // --prefetch
  std::string metrics_listen;       // --metrics-listen; empty = no endpoint
  int metrics_blob_series = 64;     // --metrics-blob-series; 0 = no per-blob series
  std::string log_level = "info";   // --log-level
  std::string log_format = "text";  // --log-format: text or json (one object per line)
  bool supervisor = true;           // --no-supervisor turns it off
  int stop_timeout_s = 30;          // --stop-timeout: SIGKILL a worker that has not stopped
  // A READ in flight at this many worker deaths within read_crash_window_s is failed (EIO)
  // by the next workers instead of served (tools/lazyblobd_read_journal.h). 0 = never.
  int read_crash_limit = 3;       // --read-crash-limit
  int read_crash_window_s = 300;  // --read-crash-window (seconds)
  bool check_config = false;      // --check-config: validate everything, then exit
  std::string frontend = "auto";  // --frontend: cachefiles, fanotify or auto
  std::string control_socket = "/run/lazyblob/control.sock";  // --control-socket (fanotify)
  bool keep_marks = false;  // hidden --fanotify-keep-marks: measure what marks cost
  OriginConfig origin;      // --origin*, [origin]: serve what the store lacks from a registry
  // Access traces ([trace] table; TraceOptions in core/cache_filler.h). Records are kept in
  // <store>/traces/ (an origin-only node: <origin cache>/traces/).
  double trace_record_s = 0;  // --trace-record: seconds after OPEN recorded; 0 = off
  std::uint64_t trace_record_write_ahead = TraceOptions{}.record_write_ahead_bytes;
  //                       --trace-record-write-ahead: demand window cap while recording
  bool trace_replay = true;                  // --no-trace-replay turns replay at OPEN off
  std::uint64_t trace_replay_bandwidth = 0;  // --trace-replay-bandwidth: bytes/s; 0 = unbounded
  int trace_replay_stop_after = TraceOptions{}.replay_stop_after_off_record;
  //                                    --trace-replay-stop-after: off-record demands; 0 = never
  // Where access records live; empty when neither a store nor an origin cache is set.
  std::string trace_dir_base() const;

  // Checks every setting, the engine's own limits included (write-ahead at most 1 GiB...),
  // the same way at start and on SIGHUP.
  Status Validate() const;
  // The engine's options these settings make.
  EngineOptions engine() const;
};

// Parses argv (CLI11) and the --config file. Returns the exit code to use when the process
// should end now (--help and --version: 0; any usage or config error: 2, after printing
// one "lazyblobd: ..." line per problem on stderr), else the config.
struct ParsedArgs {
  DaemonConfig config;
  int exit_code = -1;  // >= 0: exit with it
};
ParsedArgs ParseDaemonArgs(int argc, char** argv);

// Which reloadable settings were given as flags (flags win over the file, on SIGHUP too).
struct ReloadableFlags {
  bool log_level = false;
  bool write_ahead = false;
};
ReloadableFlags& GivenAsFlags();

// Re-reads the reloadable keys (log_level, write_ahead) from `config.config_file`, keeping
// the ones `given_as_flags` marks. The whole file is checked as strictly as at start; on
// any error nothing changes. For SIGHUP.
Status ReloadConfig(DaemonConfig* config, const ReloadableFlags& given_as_flags);

}  // namespace lazyblob

#endif  // LAZYBLOB_TOOLS_LAZYBLOBD_CONFIG_H_
