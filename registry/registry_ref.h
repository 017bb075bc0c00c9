// RegistryRef: where a lazyblob repository lives ("HOST[:PORT]/REPO", FORMAT.md
// "Addressing"), and the tag each blob id is published under.
//
// Plain HTTP is used only when the reference says so with an "http://" prefix; anything
// else (no prefix or "https://") is HTTPS with certificate verification.
//
// Thread-safety: value type; pure functions.
#ifndef LAZYBLOB_REGISTRY_REGISTRY_REF_H_
#define LAZYBLOB_REGISTRY_REGISTRY_REF_H_

#include <string>
#include <string_view>

#include "core/status.h"

namespace lazyblob {

struct RegistryRef {
  bool plain_http = false;  // "http://" was given
  std::string host;         // "registry.example.com" or "127.0.0.1:5000"
  std::string repository;   // "team/images": distribution-spec repository name rules

  // "[http://|https://]HOST[:PORT]/REPO". kInvalidArgument with the reason otherwise.
  static Result<RegistryRef> Parse(std::string_view text);
  // "https://HOST" or "http://HOST".
  std::string BaseUrl() const;
  // "HOST/REPO", with "http://" in front for plain HTTP.
  std::string ToString() const;
};

// The tag a blob id is published under: "lb-" + the id with every byte outside
// [A-Za-z0-9.-] written as "_" + two lower-case hex digits, when that fits in 128
// characters; else "lbh-" + the hex SHA-256 of the id (the manifest names the id).
// Injective; ids are ChunkStore blob ids (1..255 bytes).
std::string TagForBlobId(std::string_view id);
// The id an "lb-" tag stands for; kNotFound for "lbh-" tags (read the manifest) and
// kInvalidArgument for tags that are not lazyblob's.
Result<std::string> BlobIdForTag(std::string_view tag);
// True for tags TagForBlobId can produce ("lb-..." or "lbh-...").
bool IsBlobTag(std::string_view tag);

}  // namespace lazyblob

#endif  // LAZYBLOB_REGISTRY_REGISTRY_REF_H_
