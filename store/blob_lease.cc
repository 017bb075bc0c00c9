#include "store/blob_lease.h"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>

#include <cerrno>

#include "store/hashing.h"

namespace lazyblob {

std::string BlobLease::LockPath(const std::string& store_dir, std::string_view blob_id) {
  std::span<const std::uint8_t> bytes(reinterpret_cast<const std::uint8_t*>(blob_id.data()),
                                      blob_id.size());
  std::string name;
  if (blob_id.size() <= 120) {
    name = HexOf(bytes);
  } else {
    Sha256Digest d = Sha256Of(std::as_bytes(std::span(blob_id.data(), blob_id.size())));
    name = "s" + HexOf(d);
  }
  return store_dir + "/leases/" + name + ".lock";
}

Result<BlobLease> BlobLease::Acquire(const std::string& store_dir, std::string_view blob_id) {
  const std::string dir = store_dir + "/leases";
  if (::mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) {
    return Status::FromErrno(errno, "mkdir " + dir);
  }
  const std::string path = LockPath(store_dir, blob_id);
  for (;;) {
    UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644));
    if (!fd) return Status::FromErrno(errno, "open " + path);
    while (::flock(fd.get(), LOCK_SH) != 0) {
      if (errno != EINTR) return Status::FromErrno(errno, "flock " + path);
    }
    // ChunkStore::Remove unlinks the file under LOCK_EX: a lock won on a file that is no
    // longer at `path` guards nothing (a later Remove would lock the new file), so retry.
    struct stat held {
    }, named{};
    if (::fstat(fd.get(), &held) != 0) return Status::FromErrno(errno, "fstat " + path);
    const int rc = ::stat(path.c_str(), &named);
    if (rc == 0 && named.st_ino == held.st_ino && named.st_dev == held.st_dev) {
      return BlobLease(std::move(fd), std::string(blob_id));
    }
    if (rc != 0 && errno != ENOENT) return Status::FromErrno(errno, "stat " + path);
  }
}

}  // namespace lazyblob
