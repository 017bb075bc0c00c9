#include "tools/lazyblobd_origin.h"

#include <sys/stat.h>

#include <chrono>
#include <cmath>
#include <filesystem>

namespace lazyblob {
namespace {

bool Exists(const std::string& path) {
  struct stat st {};
  return ::stat(path.c_str(), &st) == 0;
}

Result<std::unique_ptr<RegistryClient>> OpenClient(const OriginConfig& c) {
  auto ref = RegistryRef::Parse(c.registry);
  if (!ref.ok()) return InvalidArgument("--origin: " + ref.status().message());
  RegistryOptions o;
  o.ref = *ref;
  const auto ms = std::chrono::milliseconds(static_cast<long long>(std::ceil(c.timeout_s * 1000)));
  o.http.request_timeout = ms;
  o.http.connect_timeout = std::min(ms, std::chrono::milliseconds(5000));
  o.http.max_attempts = c.retries + 1;
  o.http.backoff_initial = std::chrono::milliseconds(50);
  o.http.backoff_max = std::chrono::milliseconds(1000);
  o.http.ca_file = c.ca_file;
  if (!c.ca_file.empty() && !Exists(c.ca_file)) {
    return NotFound("--origin-ca-file " + c.ca_file + " does not exist");
  }
  std::string auth = c.auth_file;
  if (auth.empty() && Exists(DefaultDockerConfigPath())) auth = DefaultDockerConfigPath();
  if (!auth.empty()) {
    auto creds = LoadDockerCredentials(auth, ref->host);
    if (!creds.ok()) return creds.status().WithContext("--origin-auth-file");
    o.credentials = *creds;
  }
  return RegistryClient::Open(o);
}

}  // namespace

Result<std::unique_ptr<OriginServing>> StartOrigin(const OriginConfig& config, ChunkStore* local) {
  auto serving = std::make_unique<OriginServing>();
  serving->stats = std::make_shared<PrometheusOriginStats>();
  LB_ASSIGN_OR_RETURN(serving->client, OpenClient(config));
  std::error_code ec;
  std::filesystem::create_directories(config.cache_dir, ec);
  if (ec) return Status::FromErrno(ec.value(), "--origin-cache " + config.cache_dir);
  OriginCacheOptions co;
  co.dir = config.cache_dir + "/store";
  co.limit_bytes = config.cache_bytes;
  LB_ASSIGN_OR_RETURN(serving->cache, OriginCache::Open(co, serving->stats.get()));
  OriginSourceOptions so;
  so.maps_dir = config.cache_dir + "/maps";
  so.coalesce.max_request_bytes = config.max_request_bytes;
  so.ahead_requests = config.ahead_requests;
  LB_ASSIGN_OR_RETURN(serving->source,
                      OriginSource::Open(so, local, serving->client.get(), serving->cache.get(),
                                         serving->stats.get()));
  return serving;
}

}  // namespace lazyblob
