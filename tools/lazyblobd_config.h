// DaemonConfig: everything lazyblobd is told, from flags and an optional TOML file (flags
// win). Parsing lives here; the supervisor and the worker only read the struct.
//
// Thread-safety: plain values.
#ifndef LAZYBLOB_TOOLS_LAZYBLOBD_CONFIG_H_
#define LAZYBLOB_TOOLS_LAZYBLOBD_CONFIG_H_

#include <cstdint>
#include <string>

#include "core/status.h"
#include "tools/lazyblobd_origin_config.h"

namespace lazyblob {

struct DaemonConfig {
  std::string store_dir;                           // --store (required)
  std::string cache_dir;                           // --cache-dir (required with --device)
  std::string device_path = "/dev/cachefiles";     // --device
  std::string sim_socket;                          // --sim-socket: use a KernelSimulator instead
  std::string config_file;                         // --config
  int worker_threads = 0;                          // --threads; 0 = engine default
  std::uint64_t write_ahead_bytes = 1 << 20;       // --write-ahead
  std::uint64_t chunk_cache_bytes = 256ull << 20;  // --chunk-cache
  bool prefetch_on_open = false;                   // --prefetch
  std::string metrics_listen;                      // --metrics-listen; empty = no endpoint
  std::string log_level = "info";                  // --log-level
  bool supervisor = true;                          // --no-supervisor turns it off
  OriginConfig origin;                             // --origin*, [origin]

  Status Validate() const;
};

// "512K", "1M", "256MiB", "1g", "4096" -> bytes (binary units).
Result<std::uint64_t> ParseSize(const std::string& text);

// Parses argv (CLI11) and the --config file. Returns the exit code to use when the process
// should end now (--help, usage error), else the config.
struct ParsedArgs {
  DaemonConfig config;
  int exit_code = -1;  // >= 0: exit with it
};
ParsedArgs ParseDaemonArgs(int argc, char** argv);

// Re-reads the reloadable keys (log_level, write_ahead) from `config.config_file`, keeping
// values that were given as flags (`flag_*` say which). For SIGHUP.
struct ReloadableFlags {
  bool log_level = false;
  bool write_ahead = false;
};
Status ReloadConfig(DaemonConfig* config, const ReloadableFlags& given_as_flags);
ReloadableFlags& GivenAsFlags();

}  // namespace lazyblob

#endif  // LAZYBLOB_TOOLS_LAZYBLOBD_CONFIG_H_
