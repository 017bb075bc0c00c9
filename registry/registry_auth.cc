#include "registry/registry_auth.h"

#include <openssl/evp.h>

#include <cctype>
#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

namespace lazyblob {
namespace {

std::string Lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

// "https://host:port/v1/" -> "host:port".
std::string_view HostOfKey(std::string_view key) {
  if (auto p = key.find("://"); p != std::string_view::npos) key.remove_prefix(p + 3);
  if (auto slash = key.find('/'); slash != std::string_view::npos) key = key.substr(0, slash);
  return key;
}

}  // namespace

std::string Base64Encode(std::string_view bytes) {
  std::string out(4 * ((bytes.size() + 2) / 3), '\0');
  const int n = EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(bytes.data()),
                                static_cast<int>(bytes.size()));
  out.resize(static_cast<std::size_t>(n));
  return out;
}

Result<std::string> Base64Decode(std::string_view text) {
  std::string in;
  for (char c : text) {
    if (!std::isspace(static_cast<unsigned char>(c))) in += c;
  }
  if (in.size() % 4 != 0) return InvalidArgument("base64 text has a bad length");
  std::string out(in.size() / 4 * 3, '\0');
  const int n = EVP_DecodeBlock(reinterpret_cast<unsigned char*>(out.data()),
                                reinterpret_cast<const unsigned char*>(in.data()),
                                static_cast<int>(in.size()));
  if (n < 0) return InvalidArgument("bad base64 text");
  std::size_t len = static_cast<std::size_t>(n);
  if (!in.empty() && in.back() == '=') --len;  // EVP_DecodeBlock keeps the padding's zeros
  if (in.size() >= 2 && in[in.size() - 2] == '=') --len;
  out.resize(len);
  return out;
}

std::string DefaultDockerConfigPath() {
  if (const char* dir = std::getenv("DOCKER_CONFIG"); dir != nullptr && *dir != '\0') {
    return std::string(dir) + "/config.json";
  }
  const char* home = std::getenv("HOME");
  return std::string(home != nullptr ? home : "") + "/.docker/config.json";
}

Result<std::optional<Credentials>> LoadDockerCredentials(const std::string& path,
                                                         std::string_view host) {
  std::ifstream in(path);
  if (!in) return NotFound("auth file " + path + " does not exist or is not readable");
  std::stringstream text;
  text << in.rdbuf();
  const nlohmann::json doc = nlohmann::json::parse(text.str(), nullptr, false);
  const std::string bad = "auth file " + path + " is not a docker config.json ";
  if (doc.is_discarded() || !doc.is_object()) return InvalidArgument(bad + "(not JSON)");
  if (!doc.contains("auths")) return std::optional<Credentials>();
  if (!doc["auths"].is_object()) return InvalidArgument(bad + "(\"auths\" is not an object)");
  for (const auto& [key, entry] : doc["auths"].items()) {
    if (Lower(HostOfKey(key)) != Lower(host)) continue;
    if (!entry.is_object()) return InvalidArgument(bad + "(an \"auths\" entry is not an object)");
    Credentials c;
    if (entry.contains("auth") && entry["auth"].is_string() &&
        !entry["auth"].get<std::string>().empty()) {
      auto decoded = Base64Decode(entry["auth"].get<std::string>());
      const auto colon = decoded.ok() ? decoded->find(':') : std::string::npos;
      if (colon == std::string::npos) {
        return InvalidArgument(bad + "(the \"auth\" of " + std::string(host) +
                               " is not base64 of user:password)");
      }
      c.username = decoded->substr(0, colon);
      c.password = decoded->substr(colon + 1);
    } else if (entry.contains("username") && entry["username"].is_string() &&
               entry.contains("password") && entry["password"].is_string()) {
      c.username = entry["username"].get<std::string>();
      c.password = entry["password"].get<std::string>();
    } else {
      continue;  // e.g. an entry served by a credential helper
    }
    return std::optional<Credentials>(std::move(c));
  }
  return std::optional<Credentials>();
}

std::string BasicAuthorization(const Credentials& c) {
  return "Basic " + Base64Encode(c.username + ":" + c.password);
}

Result<AuthChallenge> ParseAuthChallenge(std::string_view h) {
  AuthChallenge ch;
  std::size_t i = 0;
  auto skip_space = [&] {
    while (i < h.size() && (h[i] == ' ' || h[i] == '\t')) ++i;
  };
  skip_space();
  const std::size_t scheme_start = i;
  while (i < h.size() && h[i] != ' ' && h[i] != '\t') ++i;
  ch.scheme = Lower(h.substr(scheme_start, i - scheme_start));
  if (ch.scheme.empty()) return Malformed("WWW-Authenticate header is empty");
  while (true) {
    skip_space();
    if (i >= h.size()) break;
    const std::size_t name_start = i;
    while (i < h.size() && h[i] != '=' && h[i] != ',' && h[i] != ' ') ++i;
    if (i >= h.size() || h[i] != '=') return Malformed("WWW-Authenticate header is malformed");
    std::string name = Lower(h.substr(name_start, i - name_start));
    ++i;
    std::string value;
    if (i < h.size() && h[i] == '"') {
      ++i;
      while (i < h.size() && h[i] != '"') {
        if (h[i] == '\\' && i + 1 < h.size()) ++i;
        value += h[i++];
      }
      if (i >= h.size()) return Malformed("WWW-Authenticate header has an unterminated quote");
      ++i;
    } else {
      while (i < h.size() && h[i] != ',' && h[i] != ' ') value += h[i++];
    }
    ch.params[name] = value;
    skip_space();
    if (i < h.size() && h[i] == ',') ++i;
  }
  return ch;
}

}  // namespace lazyblob
