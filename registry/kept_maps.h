// KeptMaps: the chunk maps of blobs a daemon resolved through the registry, kept on disk so
// that a restarted daemon serves them without asking the registry again (registry/FORMAT.md
// "The origin cache"). One file per blob, `<dir>/<name>.lbrm`, holding the chunk map blob's
// bytes exactly as the registry served them; written to a temporary file, fsynced and
// renamed, so a crash leaves either the whole map or none.
//
// Thread-safety: thread-safe (each call works on its own files; rename is atomic).
#ifndef LAZYBLOB_REGISTRY_KEPT_MAPS_H_
#define LAZYBLOB_REGISTRY_KEPT_MAPS_H_

#include <optional>
#include <string>
#include <string_view>

#include "core/status.h"
#include "registry/remote_format.h"

namespace lazyblob {

class KeptMaps {
 public:
  // Creates `dir` when missing.
  static Result<KeptMaps> Open(const std::string& dir);

  // The kept map of `id`, or nullopt. A file that does not decode, or names another id,
  // is kMalformed (the caller resolves the blob again and overwrites it).
  Result<std::optional<RemoteBlobMap>> Load(std::string_view id) const;
  Status Save(const RemoteBlobMap& map) const;

  // The file name used for `id`: hex of the id when it is at most 120 bytes, else "s" +
  // hex(SHA-256(id)); then ".lbrm".
  static std::string FileName(std::string_view id);

 private:
  explicit KeptMaps(std::string dir) : dir_(std::move(dir)) {}
  std::string dir_;
};

}  // namespace lazyblob

#endif  // LAZYBLOB_REGISTRY_KEPT_MAPS_H_
