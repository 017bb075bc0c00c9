#include "tools/lazyblobd_origin_config.h"

#include <CLI/CLI.hpp>

#include "tools/byte_size.h"

namespace lazyblob {

Status OriginConfig::Validate() const {
  if (!enabled()) return Status::Ok();
  if (cache_dir.empty()) return InvalidArgument("--origin needs --origin-cache DIR");
  if (!(timeout_s > 0 && timeout_s <= 3600)) {
    return InvalidArgument("--origin-timeout must be between 0 and 3600 seconds");
  }
  if (retries < 0 || retries > 10) return InvalidArgument("--origin-retries must be 0..10");
  if (max_request_bytes < 4096 || max_request_bytes > (256ull << 20)) {
    return InvalidArgument("--origin-max-request must be between 4K and 256M");
  }
  if (cache_bytes < (16ull << 20)) return InvalidArgument("--origin-cache-size must be >= 16M");
  if (ahead_requests < 1 || ahead_requests > 64) {
    return InvalidArgument("--origin-ahead-requests must be 1..64");
  }
  return Status::Ok();
}

void AddOriginFlags(CLI::App& app, OriginConfig* c, OriginFlagText* text) {
  app.add_option("--origin", c->registry,
                 "Serve ids the store lacks from this registry repository, "
                 "[http://]HOST[:PORT]/REPO (what `lazyblob push` published)");
  app.add_option("--origin-cache", c->cache_dir,
                 "Where fetched chunks and resolved maps are kept (a store lazyblobd owns "
                 "as its writer; required with --origin)");
  app.add_option("--origin-cache-size", text->cache_size,
                 "Bound of --origin-cache (K/M/G); the oldest fetched chunks are evicted");
  app.add_option("--origin-auth-file", c->auth_file,
                 "docker config.json with the registry's credentials (default: "
                 "$DOCKER_CONFIG/config.json or ~/.docker/config.json when present)");
  app.add_option("--origin-ca-file", c->ca_file, "PEM CA certificates to verify the registry");
  app.add_option("--origin-timeout", c->timeout_s,
                 "Seconds one registry request may take; a READ of missing chunks fails "
                 "(EIO) after about (retries + 1) x this when the registry does not answer");
  app.add_option("--origin-retries", c->retries, "Retries of a failed registry request (0..10)");
  app.add_option("--origin-max-request", text->max_request,
                 "Most bytes one coalesced Range GET asks for (K/M/G)");
  app.add_option("--origin-ahead-requests", c->ahead_requests,
                 "Range GETs a trace replay keeps in flight, fetching a start's record ahead "
                 "of its reads (1..64); a demand read never queues behind them, "
                 "--trace-replay-bandwidth bounds their bytes");
}

Status FinishOriginFlags(const CLI::App& app, const OriginFlagText& text, OriginConfig* c) {
  if (app.count("--origin-max-request") != 0) {
    auto v = ParseByteSize(text.max_request);
    if (!v.ok()) return InvalidArgument("--origin-max-request: " + v.status().message());
    c->max_request_bytes = *v;
  }
  if (app.count("--origin-cache-size") != 0) {
    auto v = ParseByteSize(text.cache_size);
    if (!v.ok()) return InvalidArgument("--origin-cache-size: " + v.status().message());
    c->cache_bytes = *v;
  }
  return Status::Ok();
}

}  // namespace lazyblob
