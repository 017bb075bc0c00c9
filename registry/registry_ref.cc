#include "registry/registry_ref.h"

#include <openssl/evp.h>

#include <regex>

namespace lazyblob {
namespace {

constexpr std::string_view kTagPrefix = "lb-";
constexpr std::string_view kHashedTagPrefix = "lbh-";
constexpr std::size_t kMaxTagChars = 128;

bool Plain(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' ||
         c == '-';
}

int HexValue(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  return -1;
}

std::string HexSha256(std::string_view text) {
  unsigned char d[32];
  unsigned int len = 0;
  EVP_Digest(text.data(), text.size(), d, &len, EVP_sha256(), nullptr);
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string s;
  for (unsigned char b : d) {
    s += kDigits[b >> 4];
    s += kDigits[b & 0xf];
  }
  return s;
}

}  // namespace

Result<RegistryRef> RegistryRef::Parse(std::string_view text) {
  RegistryRef ref;
  std::string_view rest = text;
  if (rest.starts_with("http://")) {
    ref.plain_http = true;
    rest.remove_prefix(7);
  } else if (rest.starts_with("https://")) {
    rest.remove_prefix(8);
  }
  const auto slash = rest.find('/');
  if (slash == std::string_view::npos || slash == 0 || slash + 1 == rest.size()) {
    return InvalidArgument("registry reference '" + std::string(text) +
                           "' is not HOST[:PORT]/REPOSITORY");
  }
  ref.host = std::string(rest.substr(0, slash));
  ref.repository = std::string(rest.substr(slash + 1));
  static const std::regex kHost(
      R"(^[A-Za-z0-9.-]+(:[0-9]{1,5})?$|^\[[0-9A-Fa-f:.]+\](:[0-9]{1,5})?$)");
  if (!std::regex_match(ref.host, kHost)) {
    return InvalidArgument("registry reference '" + std::string(text) + "': bad host '" + ref.host +
                           "'");
  }
  // distribution-spec: path components of lower-case alphanumerics joined by separators.
  static const std::regex kRepo(
      R"(^[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*$)");
  if (ref.repository.size() > 255 || !std::regex_match(ref.repository, kRepo)) {
    return InvalidArgument("registry reference '" + std::string(text) + "': repository '" +
                           ref.repository +
                           "' must be lower-case letters, digits and . _ - separators, "
                           "components joined by '/'");
  }
  return ref;
}

std::string RegistryRef::BaseUrl() const { return (plain_http ? "http://" : "https://") + host; }

std::string RegistryRef::ToString() const {
  return (plain_http ? "http://" : "") + host + "/" + repository;
}

std::string TagForBlobId(std::string_view id) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string tag(kTagPrefix);
  for (char c : id) {
    if (Plain(c)) {
      tag += c;
    } else {
      const auto u = static_cast<unsigned char>(c);
      tag += '_';
      tag += kDigits[u >> 4];
      tag += kDigits[u & 0xf];
    }
  }
  if (tag.size() <= kMaxTagChars) return tag;
  return std::string(kHashedTagPrefix) + HexSha256(id);
}

bool IsBlobTag(std::string_view tag) {
  return (tag.starts_with(kTagPrefix) && tag.size() > kTagPrefix.size()) ||
         (tag.starts_with(kHashedTagPrefix) && tag.size() == kHashedTagPrefix.size() + 64);
}

Result<std::string> BlobIdForTag(std::string_view tag) {
  if (tag.starts_with(kHashedTagPrefix)) {
    return NotFound("tag '" + std::string(tag) + "' names its blob id only in its manifest");
  }
  if (!tag.starts_with(kTagPrefix) || tag.size() == kTagPrefix.size()) {
    return InvalidArgument("tag '" + std::string(tag) + "' is not a lazyblob blob tag");
  }
  std::string id;
  for (std::size_t i = kTagPrefix.size(); i < tag.size(); ++i) {
    const char c = tag[i];
    if (Plain(c)) {
      id += c;
      continue;
    }
    if (c != '_' || i + 2 >= tag.size() || HexValue(tag[i + 1]) < 0 || HexValue(tag[i + 2]) < 0) {
      return InvalidArgument("tag '" + std::string(tag) + "' has a bad escape");
    }
    const char decoded = static_cast<char>(HexValue(tag[i + 1]) * 16 + HexValue(tag[i + 2]));
    if (Plain(decoded)) {
      return InvalidArgument("tag '" + std::string(tag) + "' escapes a plain character");
    }
    id += decoded;
    i += 2;
  }
  return id;
}

}  // namespace lazyblob
