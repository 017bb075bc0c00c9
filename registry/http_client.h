// HttpClient: the one place lazyblob speaks HTTP, through libcurl (never a hand-written
// client). Connections are kept alive and reused: finished easy handles go back to a
// small pool and keep their connection cache. Every attempt has a connect and a total
// timeout; retryable failures (connection errors, timeouts, HTTP 429/500/502/503/504) of
// idempotent requests are retried a bounded number of times with jittered exponential
// backoff.
//
// Redirects are followed (registries send blob GETs to object storage); libcurl does not
// pass the Authorization header on to another host. The client never logs; statuses it returns name
// the method and URL but never request headers, so credentials sent in headers do not leak into
// messages.
//
// Thread-safety: Send() and stats() are thread-safe; many threads may send at once (each
// request uses its own easy handle). The client must outlive its calls.
#ifndef LAZYBLOB_REGISTRY_HTTP_CLIENT_H_
#define LAZYBLOB_REGISTRY_HTTP_CLIENT_H_

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/mutex.h"
#include "core/status.h"

namespace lazyblob {

struct HttpClientOptions {
  // PEM file of CA certificates to verify servers with; "" = the system's CAs. TLS
  // certificates and host names are always verified.
  std::string ca_file;
  std::chrono::milliseconds connect_timeout{5000};   // per attempt
  std::chrono::milliseconds request_timeout{60000};  // per attempt, whole exchange
  int max_attempts = 4;                              // 1 = no retries
  std::chrono::milliseconds backoff_initial{100};    // doubled per retry, jittered
  std::chrono::milliseconds backoff_max{2000};
  std::size_t max_idle_handles = 16;  // pooled easy handles (each keeps its connections)
  std::string user_agent = "lazyblob/0.1.0";

  Status Validate() const;
};

struct HttpRequest {
  std::string method = "GET";  // GET, HEAD, POST, PUT, PATCH, DELETE
  std::string url;
  std::vector<std::string> headers;  // "Name: value"
  std::span<const std::uint8_t> body;
  // Ask only for body bytes [offset, offset + length) ("Range: bytes=..."). A server that
  // ignores Range answers 200 with the whole body: the client then keeps just these bytes,
  // stops the transfer once it has them, and sets HttpResponse::range_ignored.
  std::optional<std::pair<std::uint64_t, std::uint64_t>> range;
  bool idempotent = true;  // may be retried after a transport failure or a 5xx/429
  std::uint64_t max_body_bytes = 256ull << 20;  // a longer success body is kIoError
};

struct HttpResponse {
  long status = 0;
  std::vector<std::pair<std::string, std::string>> headers;  // names lower-case, final response
  std::vector<std::uint8_t> body;  // for error statuses: at most the first 64 KiB
  bool range_ignored = false;
  std::string effective_url;

  // The first header with this (lower-case) name; "" if absent.
  std::string Header(std::string_view name) const;
};

struct HttpStats {
  std::uint64_t requests = 0;  // attempts sent, retries included
  std::uint64_t retries = 0;
  std::uint64_t bytes_received = 0;  // body bytes
  std::uint64_t bytes_sent = 0;      // body bytes
};

class HttpClient {
 public:
  static Result<std::unique_ptr<HttpClient>> Create(const HttpClientOptions& options);
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;

  // Any HTTP status is a response. Transport failures that outlast the retries are
  // kIoError ("GET URL: Couldn't connect to server (4 attempts)"); a TLS certificate that
  // does not verify is kPermissionDenied (not retried).
  Result<HttpResponse> Send(const HttpRequest& request);

  HttpStats stats() const;
  const HttpClientOptions& options() const { return options_; }

 private:
  explicit HttpClient(const HttpClientOptions& options) : options_(options) {}
  void* AcquireHandle();
  void ReleaseHandle(void* handle);
  Result<HttpResponse> Attempt(void* handle, const HttpRequest& request, bool* retryable);

  const HttpClientOptions options_;
  Mutex mu_;
  std::vector<void*> idle_ LB_GUARDED_BY(mu_);  // CURL*
  std::atomic<std::uint64_t> requests_{0}, retries_{0}, received_{0}, sent_{0};
};

}  // namespace lazyblob

#endif  // LAZYBLOB_REGISTRY_HTTP_CLIENT_H_
