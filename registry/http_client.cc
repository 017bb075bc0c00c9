#include "registry/http_client.h"

#include <curl/curl.h>

#include <algorithm>
#include <cctype>
#include <random>
#include <thread>

namespace lazyblob {
namespace {

constexpr std::size_t kErrorBodyBytes = 64 * 1024;

void GlobalInit() {
  static const CURLcode rc = curl_global_init(CURL_GLOBAL_DEFAULT);
  (void)rc;
}

// Collects the final response's headers and the body (or the requested range of it).
struct Exchange {
  CURL* curl = nullptr;
  const HttpRequest* request = nullptr;
  HttpResponse* response = nullptr;
  std::uint64_t max_body = 0;
  std::uint64_t seen = 0;   // body bytes received of the final response
  bool range_done = false;  // a 200 to a Range request delivered the wanted bytes
  bool too_big = false;

  long Status() const {
    long code = 0;
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &code);
    return code;
  }
};

std::size_t OnHeader(char* data, std::size_t size, std::size_t n, void* user) {
  auto* ex = static_cast<Exchange*>(user);
  std::string_view line(data, size * n);
  if (line.starts_with("HTTP/")) {  // a new response (after a redirect or a 100)
    ex->response->headers.clear();
    return size * n;
  }
  const auto colon = line.find(':');
  if (colon == std::string_view::npos) return size * n;
  std::string name(line.substr(0, colon));
  std::transform(name.begin(), name.end(), name.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  std::string_view value = line.substr(colon + 1);
  while (!value.empty() && (value.front() == ' ' || value.front() == '\t')) value.remove_prefix(1);
  while (!value.empty() && (value.back() == '\r' || value.back() == '\n' || value.back() == ' ')) {
    value.remove_suffix(1);
  }
  ex->response->headers.emplace_back(std::move(name), std::string(value));
  return size * n;
}

std::size_t OnBody(char* data, std::size_t size, std::size_t n, void* user) {
  auto* ex = static_cast<Exchange*>(user);
  const std::size_t len = size * n;
  std::vector<std::uint8_t>& body = ex->response->body;
  const long status = ex->Status();
  const std::uint64_t start = ex->seen;
  ex->seen += len;
  if (status >= 300) {  // error text only
    const std::size_t keep =
        std::min<std::size_t>(len, kErrorBodyBytes - std::min(kErrorBodyBytes, body.size()));
    body.insert(body.end(), data, data + keep);
    return len;
  }
  if (ex->request->range && status == 200) {
    // The server ignored Range: keep only the wanted window, stop once it is complete.
    ex->response->range_ignored = true;
    const auto [off, want] = *ex->request->range;
    const std::uint64_t lo = std::max(start, off), hi = std::min(start + len, off + want);
    if (lo < hi) body.insert(body.end(), data + (lo - start), data + (hi - start));
    if (body.size() >= want) {
      ex->range_done = true;
      return 0;  // aborts the transfer (CURLE_WRITE_ERROR), which Attempt treats as success
    }
    return len;
  }
  if (body.size() + len > ex->max_body) {
    ex->too_big = true;
    return 0;
  }
  body.insert(body.end(), data, data + len);
  return len;
}

bool RetryableStatus(long status) {
  return status == 429 || status == 500 || status == 502 || status == 503 || status == 504;
}

bool RetryableCurl(CURLcode rc) {
  switch (rc) {
    case CURLE_COULDNT_CONNECT:
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
      return true;
    default:
      return false;
  }
}

std::chrono::milliseconds Backoff(const HttpClientOptions& o, int retry) {
  thread_local std::mt19937_64 rng(std::random_device{}());
  auto ms = o.backoff_initial.count() << std::min(retry, 20);
  ms = std::min<long long>(ms, o.backoff_max.count());
  std::uniform_int_distribution<long long> jitter(ms / 2, std::max<long long>(ms / 2, ms));
  return std::chrono::milliseconds(jitter(rng));
}

}  // namespace

Status HttpClientOptions::Validate() const {
  if (connect_timeout.count() <= 0 || request_timeout.count() <= 0) {
    return InvalidArgument("HTTP timeouts must be positive");
  }
  if (max_attempts < 1 || max_attempts > 20) return InvalidArgument("max_attempts must be 1..20");
  if (backoff_initial.count() < 0 || backoff_max < backoff_initial) {
    return InvalidArgument("backoff must be 0 <= initial <= max");
  }
  return Status::Ok();
}

std::string HttpResponse::Header(std::string_view name) const {
  for (const auto& [k, v] : headers) {
    if (k == name) return v;
  }
  return "";
}

Result<std::unique_ptr<HttpClient>> HttpClient::Create(const HttpClientOptions& options) {
  LB_RETURN_IF_ERROR(options.Validate());
  GlobalInit();
  return std::unique_ptr<HttpClient>(new HttpClient(options));
}

HttpClient::~HttpClient() {
  for (void* h : idle_) curl_easy_cleanup(static_cast<CURL*>(h));
}

void* HttpClient::AcquireHandle() {
  {
    MutexLock lock(&mu_);
    if (!idle_.empty()) {
      void* h = idle_.back();
      idle_.pop_back();
      return h;
    }
  }
  return curl_easy_init();
}

void HttpClient::ReleaseHandle(void* handle) {
  curl_easy_reset(static_cast<CURL*>(handle));  // keeps the connection cache
  MutexLock lock(&mu_);
  if (idle_.size() < options_.max_idle_handles) {
    idle_.push_back(handle);
    return;
  }
  curl_easy_cleanup(static_cast<CURL*>(handle));
}

HttpStats HttpClient::stats() const {
  return HttpStats{requests_.load(), retries_.load(), received_.load(), sent_.load()};
}

Result<HttpResponse> HttpClient::Attempt(void* handle, const HttpRequest& req, bool* retryable) {
  CURL* c = static_cast<CURL*>(handle);
  HttpResponse resp;
  Exchange ex{c, &req, &resp, req.max_body_bytes};
  char error[CURL_ERROR_SIZE] = {};
  curl_easy_setopt(c, CURLOPT_URL, req.url.c_str());
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, error);
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
  curl_easy_setopt(c, CURLOPT_MAXREDIRS, 5L);
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS,
                   static_cast<long>(options_.connect_timeout.count()));
  curl_easy_setopt(c, CURLOPT_TIMEOUT_MS, static_cast<long>(options_.request_timeout.count()));
  curl_easy_setopt(c, CURLOPT_USERAGENT, options_.user_agent.c_str());
  curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 1L);
  curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 2L);
  if (!options_.ca_file.empty()) curl_easy_setopt(c, CURLOPT_CAINFO, options_.ca_file.c_str());
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, OnHeader);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, &ex);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, OnBody);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &ex);
  curl_slist* headers = curl_slist_append(nullptr, "Expect:");
  for (const std::string& h : req.headers) headers = curl_slist_append(headers, h.c_str());
  std::string range;
  if (req.range) {
    range = std::to_string(req.range->first) + "-" +
            std::to_string(req.range->first + req.range->second - 1);
    curl_easy_setopt(c, CURLOPT_RANGE, range.c_str());
  }
  curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
  if (req.method == "HEAD") {
    curl_easy_setopt(c, CURLOPT_NOBODY, 1L);
  } else if (req.method == "GET") {
    curl_easy_setopt(c, CURLOPT_HTTPGET, 1L);
  } else {
    curl_easy_setopt(c, CURLOPT_CUSTOMREQUEST, req.method.c_str());
    curl_easy_setopt(c, CURLOPT_POSTFIELDS,
                     req.body.empty() ? "" : reinterpret_cast<const char*>(req.body.data()));
    curl_easy_setopt(c, CURLOPT_POSTFIELDSIZE_LARGE, static_cast<curl_off_t>(req.body.size()));
  }
  requests_.fetch_add(1, std::memory_order_relaxed);
  const CURLcode rc = curl_easy_perform(c);
  curl_slist_free_all(headers);
  sent_.fetch_add(req.body.size(), std::memory_order_relaxed);
  received_.fetch_add(ex.seen, std::memory_order_relaxed);
  const std::string what = req.method + " " + req.url;
  *retryable = false;
  const bool range_complete = rc == CURLE_WRITE_ERROR && ex.range_done;  // wanted bytes are in
  if (rc != CURLE_OK && !range_complete) {
    const std::string reason = error[0] != '\0' ? error : curl_easy_strerror(rc);
    if (rc == CURLE_WRITE_ERROR && ex.too_big) {
      return IoError(what + ": response body larger than " + std::to_string(req.max_body_bytes) +
                     " bytes");
    }
    if (rc == CURLE_PEER_FAILED_VERIFICATION || rc == CURLE_SSL_CACERT_BADFILE) {
      return Status(StatusCode::kPermissionDenied, what + ": TLS certificate not trusted (" +
                                                       reason +
                                                       "); pass the registry's CA with --ca-file");
    }
    *retryable = RetryableCurl(rc);
    return IoError(what + ": " + reason);
  }
  resp.status = ex.Status();
  char* effective = nullptr;
  curl_easy_getinfo(c, CURLINFO_EFFECTIVE_URL, &effective);
  if (effective != nullptr) resp.effective_url = effective;
  if (RetryableStatus(resp.status)) *retryable = true;
  return resp;
}

Result<HttpResponse> HttpClient::Send(const HttpRequest& req) {
  for (int attempt = 0; attempt < options_.max_attempts; ++attempt) {
    if (attempt > 0) {
      retries_.fetch_add(1, std::memory_order_relaxed);
      std::this_thread::sleep_for(Backoff(options_, attempt - 1));
    }
    void* handle = AcquireHandle();
    if (handle == nullptr) return Internal("curl_easy_init failed");
    bool retryable = false;
    Result<HttpResponse> r = Attempt(handle, req, &retryable);
    if (!r.ok() && r.status().code() == StatusCode::kIoError) {
      // A failed transfer may leave a broken connection behind; do not pool the handle.
      curl_easy_cleanup(static_cast<CURL*>(handle));
    } else {
      ReleaseHandle(handle);
    }
    if (!retryable || !req.idempotent || attempt + 1 == options_.max_attempts) {
      if (!r.ok() && attempt > 0) {
        return Status(r.status().code(),
                      r.status().message() + " (" + std::to_string(attempt + 1) + " attempts)");
      }
      return r;
    }
  }
  return Internal("unreachable: no HTTP attempt made");
}

}  // namespace lazyblob
