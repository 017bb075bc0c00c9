// FileOps: the calls through which the store's writer makes its own writes durable: the
// fdatasync of a pack file and the fsync of a directory whose entries it changed
// (FORMAT.md "Write order"). Production uses PosixFileOps(), the plain system calls.
//
// Test-only seam: a power-cut test (tests/store/power_cut_test.cc) passes its own through
// ChunkStoreOptions::test_file_ops to learn, at each of these calls, what a power cut
// would leave on disk. Reads and lock files never go through it.
//
// Each method has the contract of the system call it is named for: 0, or -1 with errno.
// Thread-safety: implementations must be callable from any thread.
#ifndef LAZYBLOB_STORE_FILE_OPS_H_
#define LAZYBLOB_STORE_FILE_OPS_H_

#include <string>

#include "core/status.h"

namespace lazyblob {

class FileOps {
 public:
  virtual ~FileOps() = default;
  // fdatasync(2) of a regular file the store wrote or truncated.
  virtual int FDataSync(int fd) = 0;
  // fsync(2) of a directory (opened O_RDONLY | O_DIRECTORY).
  virtual int FSyncDir(int fd) = 0;
};

// The system calls. Never null; lives as long as the process.
FileOps* PosixFileOps();

// Makes the entries of directory `dir` durable: opens it and calls ops->FSyncDir.
Status SyncDirectory(FileOps* ops, const std::string& dir);

}  // namespace lazyblob

#endif  // LAZYBLOB_STORE_FILE_OPS_H_
