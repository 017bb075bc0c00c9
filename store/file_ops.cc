#include "store/file_ops.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>

#include "core/unique_fd.h"

namespace lazyblob {
namespace {

class PosixOps final : public FileOps {
 public:
  int FDataSync(int fd) override { return ::fdatasync(fd); }
  int FSyncDir(int fd) override { return ::fsync(fd); }
};

}  // namespace

FileOps* PosixFileOps() {
  static PosixOps ops;
  return &ops;
}

Status SyncDirectory(FileOps* ops, const std::string& dir) {
  UniqueFd fd(::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC));
  if (!fd) return Status::FromErrno(errno, "open " + dir);
  if (ops->FSyncDir(fd.get()) != 0) return Status::FromErrno(errno, "fsync " + dir);
  return Status::Ok();
}

}  // namespace lazyblob
