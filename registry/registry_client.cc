#include "registry/registry_client.h"

#include <algorithm>
#include <nlohmann/json.hpp>

#include "registry/remote_format.h"

namespace lazyblob {
namespace {

constexpr std::uint64_t kMaxManifestBytes = 4u << 20;
constexpr std::uint64_t kMaxSmallBodyBytes = 4u << 20;

std::string UrlEncode(std::string_view s) {
  static constexpr char kDigits[] = "0123456789ABCDEF";
  std::string out;
  for (char c : s) {
    const auto u = static_cast<unsigned char>(c);
    if (std::isalnum(u) || c == '-' || c == '_' || c == '.' || c == '~') {
      out += c;
    } else {
      out += '%';
      out += kDigits[u >> 4];
      out += kDigits[u & 0xf];
    }
  }
  return out;
}

std::string BodyText(const HttpResponse& r) { return std::string(r.body.begin(), r.body.end()); }

}  // namespace

Status RegistryError(std::string_view what, const HttpResponse& r) {
  std::string detail;
  const nlohmann::json j = nlohmann::json::parse(BodyText(r), nullptr, false);
  if (!j.is_discarded() && j.is_object() && j.contains("errors") && j["errors"].is_array() &&
      !j["errors"].empty() && j["errors"][0].is_object()) {
    const nlohmann::json& e = j["errors"][0];
    if (e.contains("code") && e["code"].is_string()) detail += " " + e["code"].get<std::string>();
    if (e.contains("message") && e["message"].is_string()) {
      detail += ": " + e["message"].get<std::string>();
    }
  }
  std::string msg = std::string(what) + ": HTTP " + std::to_string(r.status) + detail;
  for (char& c : msg) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  if (r.status == 401) {
    return Status(StatusCode::kPermissionDenied,
                  msg + " (authentication failed: check the credentials in --auth-file)");
  }
  if (r.status == 403) return Status(StatusCode::kPermissionDenied, msg + " (access denied)");
  if (r.status == 404) return NotFound(msg);
  return IoError(msg);
}

Status RegistryOptions::Validate() const {
  if (ref.host.empty() || ref.repository.empty()) {
    return InvalidArgument("registry reference has no host or repository");
  }
  return http.Validate();
}

RegistryClient::RegistryClient(const RegistryOptions& options, std::unique_ptr<HttpClient> http)
    : options_(options), http_(std::move(http)) {}
RegistryClient::~RegistryClient() = default;

Result<std::unique_ptr<RegistryClient>> RegistryClient::Open(const RegistryOptions& options) {
  LB_RETURN_IF_ERROR(options.Validate());
  LB_ASSIGN_OR_RETURN(auto http, HttpClient::Create(options.http));
  return std::unique_ptr<RegistryClient>(new RegistryClient(options, std::move(http)));
}

std::string RegistryClient::Url(std::string_view path) const {
  return options_.ref.BaseUrl() + std::string(path);
}

Status RegistryClient::Authorize(const std::string& header) {
  LB_ASSIGN_OR_RETURN(AuthChallenge ch, ParseAuthChallenge(header));
  const std::string host = options_.ref.host;
  if (ch.scheme == "basic") {
    if (!options_.credentials) {
      return Status(StatusCode::kPermissionDenied,
                    "registry " + host + " wants credentials; none found (pass --auth-file)");
    }
    MutexLock lock(&mu_);
    authorization_ = BasicAuthorization(*options_.credentials);
    return Status::Ok();
  }
  if (ch.scheme != "bearer") {
    return Unsupported("registry " + host + " asks for unsupported auth scheme '" + ch.scheme +
                       "'");
  }
  const std::string realm = ch.params["realm"];
  if (!realm.starts_with("https://") &&
      !(realm.starts_with("http://") && options_.ref.plain_http)) {
    return Status(StatusCode::kPermissionDenied,
                  "registry " + host + " names token realm '" + realm +
                      "'; only https realms are used (http only with an http:// registry)");
  }
  const std::string scope =
      "repository:" + options_.ref.repository + (options_.push ? ":pull,push" : ":pull");
  std::string url =
      realm + (realm.find('?') == std::string::npos ? "?" : "&") + "scope=" + UrlEncode(scope);
  if (!ch.params["service"].empty()) url += "&service=" + UrlEncode(ch.params["service"]);
  HttpRequest req;
  req.url = url;
  req.max_body_bytes = kMaxSmallBodyBytes;
  if (options_.credentials) {
    req.headers.push_back("Authorization: " + BasicAuthorization(*options_.credentials));
  }
  LB_ASSIGN_OR_RETURN(HttpResponse resp, http_->Send(req));
  if (resp.status != 200) return RegistryError("token request to " + realm, resp);
  const nlohmann::json j = nlohmann::json::parse(BodyText(resp), nullptr, false);
  std::string token;
  if (!j.is_discarded() && j.is_object()) {
    for (const char* key : {"token", "access_token"}) {
      if (j.contains(key) && j[key].is_string() && !j[key].get<std::string>().empty()) {
        token = j[key].get<std::string>();
        break;
      }
    }
  }
  if (token.empty()) return Malformed("token service " + realm + " answered without a token");
  MutexLock lock(&mu_);
  authorization_ = "Bearer " + token;
  return Status::Ok();
}

Result<HttpResponse> RegistryClient::Call(HttpRequest request) {
  const std::size_t base_headers = request.headers.size();
  for (int round = 0;; ++round) {
    request.headers.resize(base_headers);
    {
      MutexLock lock(&mu_);
      if (!authorization_.empty()) request.headers.push_back("Authorization: " + authorization_);
    }
    LB_ASSIGN_OR_RETURN(HttpResponse resp, http_->Send(request));
    const std::string challenge = resp.Header("www-authenticate");
    if (resp.status != 401 || round == 1 || challenge.empty()) return resp;
    LB_RETURN_IF_ERROR(Authorize(challenge));
  }
}

Result<bool> RegistryClient::HasBlob(std::string_view digest) {
  HttpRequest req;
  req.method = "HEAD";
  req.url = Url("/v2/" + options_.ref.repository + "/blobs/" + std::string(digest));
  LB_ASSIGN_OR_RETURN(HttpResponse resp, Call(req));
  if (resp.status == 200) return true;
  if (resp.status == 404) return false;
  return RegistryError("HEAD blob " + std::string(digest), resp);
}

Result<std::vector<std::uint8_t>> RegistryClient::GetBlob(std::string_view digest,
                                                          std::uint64_t max_bytes) {
  HttpRequest req;
  req.url = Url("/v2/" + options_.ref.repository + "/blobs/" + std::string(digest));
  req.max_body_bytes = max_bytes;
  LB_ASSIGN_OR_RETURN(HttpResponse resp, Call(req));
  if (resp.status != 200) return RegistryError("GET blob " + std::string(digest), resp);
  if (DigestOf(resp.body) != digest) {
    return Corruption("blob " + std::string(digest) + " from " + options_.ref.ToString() +
                      " does not match its digest");
  }
  return std::move(resp.body);
}

Result<BlobRange> RegistryClient::GetBlobRange(std::string_view digest, std::uint64_t offset,
                                               std::uint64_t length) {
  HttpRequest req;
  req.url = Url("/v2/" + options_.ref.repository + "/blobs/" + std::string(digest));
  req.range = {offset, length};
  req.max_body_bytes = length;
  const std::string what = "GET blob " + std::string(digest) + " bytes " + std::to_string(offset) +
                           "+" + std::to_string(length);
  LB_ASSIGN_OR_RETURN(HttpResponse resp, Call(req));
  if (resp.status != 206 && resp.status != 200) return RegistryError(what, resp);
  if (resp.status == 206) {
    // "bytes FIRST-LAST/TOTAL": the server must have sent the range asked for.
    const std::string cr = resp.Header("content-range");
    const std::string want = "bytes " + std::to_string(offset) + "-";
    if (!cr.starts_with(want)) {
      return IoError(what + ": answered with Content-Range '" + cr + "'");
    }
  }
  if (resp.body.size() != length) {
    return IoError(what + ": got " + std::to_string(resp.body.size()) + " bytes");
  }
  return BlobRange{std::move(resp.body), resp.range_ignored};
}

Status RegistryClient::PutBlob(std::span<const std::uint8_t> bytes, std::string_view digest) {
  const std::string what = "upload blob " + std::string(digest);
  Status last;
  for (int attempt = 0; attempt < options_.http.max_attempts; ++attempt) {
    if (attempt > 0) {
      // The last try may have landed before its answer was lost.
      LB_ASSIGN_OR_RETURN(bool present, HasBlob(digest));
      if (present) return Status::Ok();
    }
    HttpRequest start;
    start.method = "POST";
    start.url = Url("/v2/" + options_.ref.repository + "/blobs/uploads/");
    LB_ASSIGN_OR_RETURN(HttpResponse session, Call(start));
    if (session.status != 202) return RegistryError(what + " (start)", session);
    std::string location = session.Header("location");
    if (location.empty()) return IoError(what + ": the registry gave no upload location");
    if (location.starts_with("/")) location = options_.ref.BaseUrl() + location;
    location += (location.find('?') == std::string::npos ? "?" : "&");
    location += "digest=" + UrlEncode(digest);
    HttpRequest put;
    put.method = "PUT";
    put.url = location;
    put.body = bytes;
    put.idempotent = false;
    put.headers = {"Content-Type: application/octet-stream"};
    auto done = Call(put);
    if (!done.ok()) {
      if (done.status().code() != StatusCode::kIoError) return done.status();
      last = done.status();
      continue;
    }
    if (done->status == 201) return Status::Ok();
    if (done->status >= 500) {
      last = RegistryError(what, *done);
      continue;
    }
    return RegistryError(what, *done);
  }
  return last;
}

Result<std::string> RegistryClient::PutManifest(std::string_view reference,
                                                std::string_view media_type,
                                                std::string_view bytes) {
  HttpRequest req;
  req.method = "PUT";
  req.url = Url("/v2/" + options_.ref.repository + "/manifests/" + std::string(reference));
  req.body = std::span(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size());
  req.headers = {"Content-Type: " + std::string(media_type)};
  LB_ASSIGN_OR_RETURN(HttpResponse resp, Call(req));
  if (resp.status != 201) return RegistryError("PUT manifest " + std::string(reference), resp);
  return DigestOf(req.body);
}

Result<FetchedManifest> RegistryClient::GetManifest(std::string_view reference) {
  HttpRequest req;
  req.url = Url("/v2/" + options_.ref.repository + "/manifests/" + std::string(reference));
  req.max_body_bytes = kMaxManifestBytes;
  req.headers = {
      "Accept: application/vnd.oci.image.manifest.v1+json, "
      "application/vnd.oci.image.index.v1+json, "
      "application/vnd.docker.distribution.manifest.v2+json"};
  LB_ASSIGN_OR_RETURN(HttpResponse resp, Call(req));
  const std::string what =
      "GET manifest " + std::string(reference) + " of " + options_.ref.ToString();
  if (resp.status != 200) return RegistryError(what, resp);
  FetchedManifest m;
  m.digest = DigestOf(resp.body);
  m.media_type = resp.Header("content-type");
  m.bytes = BodyText(resp);
  if (reference.starts_with("sha256:") && m.digest != reference) {
    return Corruption(what + ": the manifest does not match its digest");
  }
  return m;
}

Result<std::vector<std::string>> RegistryClient::ListTags() {
  std::vector<std::string> tags;
  std::string url = Url("/v2/" + options_.ref.repository + "/tags/list?n=1000");
  for (int page = 0; page < 10000 && !url.empty(); ++page) {
    HttpRequest req;
    req.url = url;
    req.max_body_bytes = kMaxSmallBodyBytes;
    LB_ASSIGN_OR_RETURN(HttpResponse resp, Call(req));
    if (resp.status == 404 && BodyText(resp).find("NAME_UNKNOWN") != std::string::npos) break;
    if (resp.status != 200) return RegistryError("list tags of " + options_.ref.ToString(), resp);
    const nlohmann::json j = nlohmann::json::parse(BodyText(resp), nullptr, false);
    if (j.is_discarded() || !j.is_object()) {
      return Malformed("tag list of " + options_.ref.ToString() + " is not JSON");
    }
    if (j.contains("tags") && j["tags"].is_array()) {
      for (const auto& t : j["tags"]) {
        if (t.is_string()) tags.push_back(t.get<std::string>());
      }
    }
    // Link: </v2/<repo>/tags/list?last=x&n=1000>; rel="next"
    url.clear();
    const std::string link = resp.Header("link");
    const auto lt = link.find('<'), gt = link.find('>');
    if (lt != std::string::npos && gt != std::string::npos && gt > lt &&
        link.find("rel=\"next\"") != std::string::npos) {
      const std::string next = link.substr(lt + 1, gt - lt - 1);
      url = next.starts_with("/") ? options_.ref.BaseUrl() + next : next;
    }
  }
  std::sort(tags.begin(), tags.end());
  return tags;
}

}  // namespace lazyblob
