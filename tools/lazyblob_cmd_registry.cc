// The verbs that talk to an OCI registry: push, pull and ls --registry
// (registry/FORMAT.md). Credentials come from a docker config.json and never reach
// stdout, stderr or --json.
#include <sys/stat.h>

#include <cmath>
#include <cstdio>
#include <map>

#include "registry/puller.h"
#include "registry/pusher.h"
#include "registry/registry_client.h"
#include "registry/trace_artifact.h"
#include "store/trace_dir.h"
#include "tools/byte_size.h"
#include "tools/lazyblob_commands.h"
#include "tools/lazyblob_format.h"
#include "tools/lazyblob_output.h"
#include "tools/lazyblob_progress.h"

namespace lazyblob::cli {
namespace {

using ull = unsigned long long;

bool Exists(const std::string& path) {
  struct stat st {};
  return stat(path.c_str(), &st) == 0;
}

Result<std::unique_ptr<RegistryClient>> OpenRegistry(const RegistryFlags& f, bool push) {
  if (f.registry.empty()) return InvalidArgument("--registry HOST[:PORT]/REPO is required");
  auto ref = RegistryRef::Parse(f.registry);
  if (!ref.ok()) return InvalidArgument("--registry: " + ref.status().message());
  if (!(f.timeout_s > 0 && f.timeout_s <= 86400)) {
    return InvalidArgument("--timeout must be between 0 and 86400 seconds");
  }
  if (f.retries < 0 || f.retries > 10) return InvalidArgument("--retries must be 0..10");
  RegistryOptions o;
  o.ref = *ref;
  o.push = push;
  o.http.ca_file = f.ca_file;
  if (!f.ca_file.empty() && !Exists(f.ca_file)) {
    return NotFound("--ca-file " + f.ca_file + " does not exist");
  }
  const auto ms = std::chrono::milliseconds(static_cast<long long>(std::ceil(f.timeout_s * 1000)));
  o.http.request_timeout = ms;
  o.http.connect_timeout = std::min(ms, std::chrono::milliseconds(10000));
  o.http.max_attempts = f.retries + 1;
  // An explicit --auth-file must exist; the default one is used when present.
  std::string auth = f.auth_file;
  if (auth.empty() && Exists(DefaultDockerConfigPath())) auth = DefaultDockerConfigPath();
  if (!auth.empty()) {
    LB_ASSIGN_OR_RETURN(o.credentials, LoadDockerCredentials(auth, ref->host));
  }
  return RegistryClient::Open(o);
}

nlohmann::json ToJson(const PushBlobResult& r) {
  return {{"id", r.id},
          {"tag", r.tag},
          {"manifest_digest", r.manifest_digest},
          {"size", r.size},
          {"chunks", r.chunks},
          {"uploaded_chunks", r.uploaded_chunks},
          {"uploaded_bytes", r.uploaded_bytes},
          {"skipped_chunks", r.skipped_chunks},
          {"skipped_bytes", r.skipped_bytes},
          {"bundles_uploaded", r.bundles_uploaded},
          {"map_bytes", r.map_bytes},
          {"already_present", r.already_present}};
}

Result<std::uint64_t> SizeFlag(const std::string& text, const char* flag) {
  auto v = ParseByteSize(text);
  if (!v.ok()) return InvalidArgument(std::string(flag) + ": " + v.status().message());
  return *v;
}

}  // namespace

ExitCode RunPush(const GlobalFlags& g, const RegistryFlags& f,
                 const std::vector<std::string>& ids) {
  constexpr std::string_view kVerb = "push";
  for (const std::string& id : ids) {
    if (Status s = ChunkStore::ValidateBlobId(id); !s.ok()) return Fail(g, kVerb, s);
  }
  auto bundle = SizeFlag(f.bundle_size, "--bundle-size");
  if (!bundle.ok()) return Fail(g, kVerb, bundle.status());
  auto client = OpenRegistry(f, /*push=*/true);
  if (!client.ok()) return Fail(g, kVerb, client.status());
  auto store = OpenStore(g, /*writable=*/false);
  if (!store.ok()) return Fail(g, kVerb, store.status());
  PushOptions o;
  o.bundle_target_bytes = *bundle;
  ProgressBar bar("push", g.progress());
  auto r = PushBlobs(**client, **store, ids, o,
                     [&bar](std::uint64_t done, std::uint64_t total) { bar.Update(done, total); });
  bar.Finish();
  if (!r.ok()) return Fail(g, kVerb, r.status());
  // Access records (lazyblobd --trace-record) go up next to their blobs' manifests, merged
  // with the record the registry holds (registry/FORMAT.md "Access records").
  std::map<std::string, PublishedTrace> traces;
  for (const PushBlobResult& b : r->blobs) {
    Result<AccessTrace> record = TraceDir(g.store).Load(b.id);
    if (record.status().code() == StatusCode::kNotFound) continue;
    if (!record.ok()) return Fail(g, kVerb, record.status());
    auto published = PublishTrace(**client, b.id, b.manifest_digest, *record);
    if (!published.ok()) return Fail(g, kVerb, published.status());
    traces[b.id] = *published;
  }
  const std::string where = (*client)->ref().ToString();
  if (g.json) {
    nlohmann::json blobs = nlohmann::json::array();
    for (const PushBlobResult& b : r->blobs) {
      nlohmann::json j = ToJson(b);
      if (auto t = traces.find(b.id); t != traces.end()) {
        j["trace"] = {{"tag", t->second.tag},
                      {"manifest_digest", t->second.manifest_digest},
                      {"chunks", t->second.chunks},
                      {"merged", t->second.merged}};
      }
      blobs.push_back(std::move(j));
    }
    PrintJson({{"registry", where},
               {"blobs", blobs},
               {"uploaded_bytes", r->uploaded_bytes},
               {"skipped_bytes", r->skipped_bytes},
               {"http_requests", r->http_requests}});
    return kExitOk;
  }
  for (const auto& [id, t] : traces) {
    std::printf("%s: access record of %llu chunks published as %s%s\n", id.c_str(),
                static_cast<ull>(t.chunks), t.tag.c_str(),
                t.merged ? " (merged with the registry's)" : "");
  }
  for (const PushBlobResult& b : r->blobs) {
    if (b.already_present) {
      std::printf("%s: already in %s (tag %s), nothing uploaded\n", b.id.c_str(), where.c_str(),
                  b.tag.c_str());
      continue;
    }
    std::printf("pushed %s to %s:%s\n", b.id.c_str(), where.c_str(), b.tag.c_str());
    std::printf("  chunks    %llu: %llu uploaded (%s), %llu already there (%s skipped)\n",
                static_cast<ull>(b.chunks), static_cast<ull>(b.uploaded_chunks),
                HumanBytes(b.uploaded_bytes).c_str(), static_cast<ull>(b.skipped_chunks),
                HumanBytes(b.skipped_bytes).c_str());
    std::printf("  manifest  %s\n", b.manifest_digest.c_str());
  }
  return kExitOk;
}

ExitCode RunPull(const GlobalFlags& g, const RegistryFlags& f, const std::string& id) {
  constexpr std::string_view kVerb = "pull";
  if (Status s = ChunkStore::ValidateBlobId(id); !s.ok()) return Fail(g, kVerb, s);
  auto max_request = SizeFlag(f.max_request, "--max-request");
  if (!max_request.ok()) return Fail(g, kVerb, max_request.status());
  PullOptions o;
  o.coalesce.max_request_bytes = *max_request;
  o.parallel_requests = f.parallel;
  if (Status s = o.Validate(); !s.ok()) return Fail(g, kVerb, s);
  auto client = OpenRegistry(f, /*push=*/false);
  if (!client.ok()) return Fail(g, kVerb, client.status());
  const bool fresh = StoreDirIsFresh(g.store);
  auto store = OpenStore(g, /*writable=*/true, /*create_if_missing=*/fresh);
  if (!store.ok()) return Fail(g, kVerb, store.status());
  ProgressBar bar("pull", g.progress());
  auto r = PullBlob(**client, **store, id, o,
                    [&bar](std::uint64_t done, std::uint64_t total) { bar.Update(done, total); });
  bar.Finish();
  if (!r.ok()) {
    Status s = r.status();
    return Fail(g, kVerb,
                Status(s.code(), s.message() + " (the store is unchanged)", s.errno_value()));
  }
  // Said only on success: a failed pull prints one line (the store stays, empty).
  if (fresh) std::fprintf(stderr, "lazyblob: pull: created a new store at %s\n", g.store.c_str());
  // The blob's access record, if the registry has one, merged into the local one: lazyblobd
  // replays it at OPEN. A record that cannot be had is a warning: the blob is pulled.
  std::uint64_t trace_chunks = 0;
  if (Result<AccessTrace> remote = FetchTrace(**client, id); remote.ok()) {
    TraceDir traces(g.store);
    Result<AccessTrace> local = traces.Load(id);
    const AccessTrace merged = local.ok() ? AccessTrace::Merge(*local, *remote) : *remote;
    if (Status s = traces.Save(id, merged); !s.ok()) {
      std::fprintf(stderr, "lazyblob: pull: access record not saved: %s\n", s.ToString().c_str());
    } else {
      trace_chunks = merged.blocks.size();
    }
  } else if (remote.status().code() != StatusCode::kNotFound) {
    std::fprintf(stderr, "lazyblob: pull: access record not fetched: %s\n",
                 remote.status().ToString().c_str());
  }
  const std::string where = (*client)->ref().ToString();
  if (g.json) {
    PrintJson({{"id", r->id},
               {"registry", where},
               {"manifest_digest", r->manifest_digest},
               {"size", r->size},
               {"chunks", r->chunks},
               {"fetched_chunks", r->fetched_chunks},
               {"fetched_bytes", r->fetched_bytes},
               {"requests", r->requests},
               {"range_ignored", r->range_ignored},
               {"stored_bytes", r->stored_bytes},
               {"already_present", r->already_present},
               {"trace_chunks", trace_chunks},
               {"created_store", fresh}});
    return kExitOk;
  }
  if (r->already_present) {
    std::printf("%s: already in %s, nothing fetched\n", id.c_str(), g.store.c_str());
    return kExitOk;
  }
  std::printf("pulled %s from %s\n", id.c_str(), where.c_str());
  std::printf("  size     %s (%llu bytes)\n", HumanBytes(r->size).c_str(),
              static_cast<ull>(r->size));
  std::printf("  chunks   %llu (%llu fetched in %llu requests, %s)\n", static_cast<ull>(r->chunks),
              static_cast<ull>(r->fetched_chunks), static_cast<ull>(r->requests),
              HumanBytes(r->fetched_bytes).c_str());
  if (r->range_ignored > 0) {
    std::printf("  note     the registry ignored Range on %llu requests (whole blobs sent)\n",
                static_cast<ull>(r->range_ignored));
  }
  return kExitOk;
}

ExitCode RunLsRegistry(const GlobalFlags& g, const RegistryFlags& f) {
  constexpr std::string_view kVerb = "ls";
  auto client = OpenRegistry(f, /*push=*/false);
  if (!client.ok()) return Fail(g, kVerb, client.status());
  std::uint64_t skipped = 0;
  auto blobs = ListRemoteBlobs(**client, &skipped);
  if (!blobs.ok()) return Fail(g, kVerb, blobs.status());
  const std::string where = (*client)->ref().ToString();
  if (g.json) {
    nlohmann::json arr = nlohmann::json::array();
    for (const RemoteBlobSummary& b : *blobs) {
      arr.push_back({{"id", b.id},
                     {"tag", b.tag},
                     {"size", b.size},
                     {"chunks", b.chunks},
                     {"sha256", b.sha256},
                     {"created", b.created},
                     {"manifest_digest", b.manifest_digest}});
    }
    PrintJson({{"registry", where}, {"blobs", arr}});
    return kExitOk;
  }
  if (blobs->empty()) {
    std::printf("(no lazyblob blobs in %s)\n", where.c_str());
    return kExitOk;
  }
  std::size_t width = 2;
  for (const RemoteBlobSummary& b : *blobs) width = std::max(width, b.id.size());
  std::printf("%-*s  %10s  %7s  %s\n", static_cast<int>(width), "ID", "SIZE", "CHUNKS", "CREATED");
  for (const RemoteBlobSummary& b : *blobs) {
    std::printf("%-*s  %10s  %7llu  %s\n", static_cast<int>(width), b.id.c_str(),
                HumanBytes(b.size).c_str(), static_cast<ull>(b.chunks), b.created.c_str());
  }
  if (skipped > 0) {
    std::fprintf(stderr, "lazyblob: ls: %llu tag(s) looked like lazyblob's but are not\n",
                 static_cast<ull>(skipped));
  }
  return kExitOk;
}

}  // namespace lazyblob::cli
