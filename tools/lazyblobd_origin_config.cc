#include "tools/lazyblobd_origin_config.h"

#include <CLI/CLI.hpp>

#include "tools/lazyblobd_config.h"

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
}

Status FinishOriginFlags(const CLI::App& app, const OriginFlagText& text, OriginConfig* c) {
  if (app.count("--origin-max-request") != 0) {
    auto v = ParseSize(text.max_request);
    if (!v.ok()) return InvalidArgument("--origin-max-request: " + v.status().message());
    c->max_request_bytes = *v;
  }
  if (app.count("--origin-cache-size") != 0) {
    auto v = ParseSize(text.cache_size);
    if (!v.ok()) return InvalidArgument("--origin-cache-size: " + v.status().message());
    c->cache_bytes = *v;
  }
  return Status::Ok();
}

Status ApplyOriginToml(const toml::table& file, const CLI::App& app, OriginConfig* c) {
  const toml::table* t = file["origin"].as_table();
  if (t == nullptr) return Status::Ok();
  auto unset = [&](const char* flag) { return app.count(flag) == 0; };
  auto str = [&](const char* key, const char* flag, std::string* out) {
    if (auto v = (*t)[key].value<std::string>(); v && unset(flag)) *out = *v;
  };
  str("registry", "--origin", &c->registry);
  str("cache_dir", "--origin-cache", &c->cache_dir);
  str("auth_file", "--origin-auth-file", &c->auth_file);
  str("ca_file", "--origin-ca-file", &c->ca_file);
  if (auto v = (*t)["timeout"].value<double>(); v && unset("--origin-timeout")) c->timeout_s = *v;
  if (auto v = (*t)["retries"].value<std::int64_t>(); v && unset("--origin-retries")) {
    c->retries = static_cast<int>(*v);
  }
  for (auto [key, flag, out] :
       {std::tuple{"max_request", "--origin-max-request", &c->max_request_bytes},
        std::tuple{"cache_size", "--origin-cache-size", &c->cache_bytes}}) {
    if (!unset(flag)) continue;
    if (auto s = (*t)[key].value<std::string>()) {
      auto v = ParseSize(*s);
      if (!v.ok())
        return InvalidArgument(std::string("[origin] ") + key + ": " + v.status().message());
      *out = *v;
    } else if (auto n = (*t)[key].value<std::int64_t>(); n && *n >= 0) {
      *out = static_cast<std::uint64_t>(*n);
    }
  }
  return Status::Ok();
}

}  // namespace lazyblob
