// OriginConfig: lazyblobd's registry origin settings (`--origin*` flags, and the `[origin]`
// table of the TOML config, which tools/lazyblobd_config.cc checks as strictly as the rest;
// flags win). Parsing only; tools/lazyblobd_origin.cc wires them.
//
// Thread-safety: plain values and free functions.
#ifndef LAZYBLOB_TOOLS_LAZYBLOBD_ORIGIN_CONFIG_H_
#define LAZYBLOB_TOOLS_LAZYBLOBD_ORIGIN_CONFIG_H_

#include <cstdint>
#include <string>

#include "core/status.h"

namespace CLI {
class App;
}

namespace lazyblob {

struct OriginConfig {
  std::string registry;   // --origin [http://|https://]HOST[:PORT]/REPO; empty = no origin
  std::string cache_dir;  // --origin-cache: the fetched chunks' store (required with --origin)
  std::string auth_file;  // --origin-auth-file: docker config.json; "" = the default one
  std::string ca_file;    // --origin-ca-file: PEM CAs; "" = the system's
  double timeout_s = 10;  // --origin-timeout: per HTTP attempt (connect: at most 5 s of it)
  int retries = 2;        // --origin-retries: extra attempts after a failed one (0..10)
  std::uint64_t max_request_bytes = 4ull << 20;  // --origin-max-request: coalescing bound
  std::uint64_t cache_bytes = 10ull << 30;       // --origin-cache-size: bound of cache_dir
  int ahead_requests = 16;  // --origin-ahead-requests: replay's Range GETs in flight (1..64)

  bool enabled() const { return !registry.empty(); }
  Status Validate() const;
};

// Text of the size flags, parsed by FinishOriginFlags.
struct OriginFlagText {
  std::string max_request = "4M";
  std::string cache_size = "10G";
};

void AddOriginFlags(CLI::App& app, OriginConfig* config, OriginFlagText* text);
// After app.parse: the sizes given as flags.
Status FinishOriginFlags(const CLI::App& app, const OriginFlagText& text, OriginConfig* config);

}  // namespace lazyblob

#endif  // LAZYBLOB_TOOLS_LAZYBLOBD_ORIGIN_CONFIG_H_
