// AtomicFile: writes a file so readers see either the old file or the complete new one.
// Data goes to "<path>.tmp.<pid>" in the same directory; Commit() fsyncs it and renames
// it over `path`. Without Commit() (an error, an early return) the temp file is removed.
// SIGINT/SIGTERM while a temp file exists also remove it (see InstallCleanupOnSignal).
//
// Thread-safety: one owner; at most one AtomicFile should be live per process (the
// signal cleanup tracks one temp path).
#ifndef LAZYBLOB_TOOLS_LAZYBLOB_ATOMIC_FILE_H_
#define LAZYBLOB_TOOLS_LAZYBLOB_ATOMIC_FILE_H_

#include <cstddef>
#include <string>
#include <string_view>

#include "core/status.h"
#include "core/unique_fd.h"

namespace lazyblob::cli {

class AtomicFile {
 public:
  // Creates the temp file next to `path` with `mode` (before umask).
  static Result<AtomicFile> Create(const std::string& path, int mode = 0644);

  AtomicFile(AtomicFile&& other) noexcept;
  AtomicFile& operator=(AtomicFile&&) = delete;
  AtomicFile(const AtomicFile&) = delete;
  ~AtomicFile();

  // Borrowed fd of the temp file (valid until Commit or destruction).
  int fd() const { return fd_.get(); }
  Status Write(std::string_view data);
  // fsync + rename over the target + fsync of the directory. `replace` false: kAlreadyExists
  // if the target exists by then (renameat2 RENAME_NOREPLACE), and the temp file goes.
  Status Commit(bool replace = true);

  // Installs SIGINT/SIGTERM/SIGHUP handlers that unlink the live temp file and exit 130.
  static void InstallCleanupOnSignal();

 private:
  AtomicFile(std::string path, std::string tmp_path, UniqueFd fd);

  std::string path_;
  std::string tmp_path_;
  UniqueFd fd_;
  bool committed_ = false;
};

}  // namespace lazyblob::cli

#endif  // LAZYBLOB_TOOLS_LAZYBLOB_ATOMIC_FILE_H_
