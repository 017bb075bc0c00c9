// RegistryClient: the OCI distribution API (distribution-spec 1.1, docker registry v2)
// for one repository: blob existence, upload and (ranged) download, manifests by tag or
// digest, and the tag list. Authentication follows the registry's 401 challenges: Basic
// with the configured credentials, or the Bearer token flow (a token is fetched from the
// challenge's realm, with the credentials when there are any, cached, and renewed on the
// next 401).
//
// Errors: 401/403 are kPermissionDenied, 404 kNotFound, other HTTP failures and transport
// failures kIoError; each message is one line naming the operation, the HTTP status and
// the registry's error code, never a credential or token.
//
// Thread-safety: all methods are thread-safe (daemon workers may share one client). The
// token is guarded by a mutex; requests run in parallel on pooled connections.
#ifndef LAZYBLOB_REGISTRY_REGISTRY_CLIENT_H_
#define LAZYBLOB_REGISTRY_REGISTRY_CLIENT_H_

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "core/mutex.h"
#include "core/status.h"
#include "registry/http_client.h"
#include "registry/registry_auth.h"
#include "registry/registry_ref.h"

namespace lazyblob {

struct RegistryOptions {
  RegistryRef ref;
  HttpClientOptions http;
  std::optional<Credentials> credentials;  // used for Basic and for the token realm
  bool push = false;  // ask tokens for "pull,push" (else "pull") on the repository

  Status Validate() const;
};

// Bytes of a ranged blob read; `range_ignored` when the server answered 200 with the
// whole blob (the client kept only the range).
struct BlobRange {
  std::vector<std::uint8_t> bytes;
  bool range_ignored = false;
};

struct FetchedManifest {
  std::string digest;      // "sha256:..." of the bytes
  std::string media_type;  // Content-Type
  std::string bytes;
};

class RegistryClient {
 public:
  static Result<std::unique_ptr<RegistryClient>> Open(const RegistryOptions& options);
  ~RegistryClient();

  const RegistryRef& ref() const { return options_.ref; }
  HttpStats stats() const { return http_->stats(); }

  // HEAD /v2/<repo>/blobs/<digest>: true when the repository holds the blob.
  Result<bool> HasBlob(std::string_view digest);
  // The whole blob, checked against its digest (kCorruption if it does not match).
  Result<std::vector<std::uint8_t>> GetBlob(std::string_view digest, std::uint64_t max_bytes);
  // Bytes [offset, offset + length) of a blob. Not checked against the digest (the
  // caller verifies what it reads); kIoError when fewer bytes arrive.
  Result<BlobRange> GetBlobRange(std::string_view digest, std::uint64_t offset,
                                 std::uint64_t length);
  // Uploads `bytes` as blob `digest` (POST an upload session, PUT ?digest=). The registry
  // checks the digest. Retried as a whole (after a HEAD) when the transport fails.
  Status PutBlob(std::span<const std::uint8_t> bytes, std::string_view digest);

  // PUT /v2/<repo>/manifests/<reference>; the manifest's digest.
  Result<std::string> PutManifest(std::string_view reference, std::string_view media_type,
                                  std::string_view bytes);
  // GET by tag or digest, accepting OCI and docker manifest types. kNotFound when absent.
  // A manifest fetched by digest is checked against it.
  Result<FetchedManifest> GetManifest(std::string_view reference);
  // Every tag (follows Link pagination), sorted. An unknown repository has none.
  Result<std::vector<std::string>> ListTags();

 private:
  RegistryClient(const RegistryOptions& options, std::unique_ptr<HttpClient> http);
  // Sends with the current authorization; on 401 answers the challenge once and resends.
  Result<HttpResponse> Call(HttpRequest request);
  Status Authorize(const std::string& challenge_header);
  std::string Url(std::string_view path) const;

  const RegistryOptions options_;
  std::unique_ptr<HttpClient> http_;
  Mutex mu_;
  std::string authorization_ LB_GUARDED_BY(mu_);  // "Bearer ..." / "Basic ..." or empty
};

// One line for a failed registry call: "WHAT: HTTP 404 BLOB_UNKNOWN: blob unknown to
// registry", mapped to a StatusCode as described above.
Status RegistryError(std::string_view what, const HttpResponse& response);

}  // namespace lazyblob

#endif  // LAZYBLOB_REGISTRY_REGISTRY_CLIENT_H_
