#include "power_cut_recorder.h"

#include <dirent.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <rocksdb/env.h>
#include <rocksdb/file_system.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <climits>

namespace lazyblob::testing {
namespace {

using rocksdb::FileOptions;
using rocksdb::IODebugContext;
using rocksdb::IOOptions;
using rocksdb::IOStatus;

std::string FdPath(int fd) {
  char buf[PATH_MAX];
  const std::string link = "/proc/self/fd/" + std::to_string(fd);
  ssize_t n = ::readlink(link.c_str(), buf, sizeof buf);
  return n > 0 ? std::string(buf, static_cast<std::size_t>(n)) : std::string();
}

std::string Canonical(const std::string& path) {
  char real[PATH_MAX];
  if (::realpath(path.c_str(), real) != nullptr) return real;
  ADD_FAILURE() << "realpath " << path;
  return path;
}

Result<std::string> ReadAll(const std::string& path) {
  UniqueFd fd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
  if (!fd) return Status::FromErrno(errno, "open " + path);
  std::string out;
  char buf[1 << 16];
  while (true) {
    ssize_t n = ::pread(fd.get(), buf, sizeof buf, static_cast<off_t>(out.size()));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Status::FromErrno(errno, "read " + path);
    if (n == 0) return out;
    out.append(buf, static_cast<std::size_t>(n));
  }
}

Status WriteAll(const std::string& path, const std::string& data) {
  UniqueFd fd(::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
  if (!fd) return Status::FromErrno(errno, "create " + path);
  for (std::size_t done = 0; done < data.size();) {
    ssize_t n = ::write(fd.get(), data.data() + done, data.size() - done);
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) return Status::FromErrno(errno, "write " + path);
    done += static_cast<std::size_t>(n);
  }
  return Status::Ok();
}

// A RocksDB file whose Sync/Fsync is a sync point.
class RecordingFile final : public rocksdb::FSWritableFileOwnerWrapper {
 public:
  RecordingFile(std::unique_ptr<rocksdb::FSWritableFile> file, std::string path,
                PowerCutRecorder* recorder)
      : FSWritableFileOwnerWrapper(std::move(file)), path_(std::move(path)), rec_(recorder) {}

  IOStatus Sync(const IOOptions& o, IODebugContext* d) override {
    IOStatus s;
    rec_->RecordSync(path_, false, "rocksdb Sync", [&] { return (s = target()->Sync(o, d)).ok(); });
    return s;
  }
  IOStatus Fsync(const IOOptions& o, IODebugContext* d) override {
    IOStatus s;
    rec_->RecordSync(path_, false, "rocksdb Fsync",
                     [&] { return (s = target()->Fsync(o, d)).ok(); });
    return s;
  }

 private:
  const std::string path_;
  PowerCutRecorder* const rec_;
};

// A RocksDB directory whose Fsync is a sync point.
class RecordingDir final : public rocksdb::FSDirectoryWrapper {
 public:
  RecordingDir(std::unique_ptr<rocksdb::FSDirectory> dir, std::string path,
               PowerCutRecorder* recorder)
      : FSDirectoryWrapper(std::move(dir)), path_(std::move(path)), rec_(recorder) {}

  IOStatus Fsync(const IOOptions& o, IODebugContext* d) override {
    IOStatus s;
    rec_->RecordSync(path_, true, "rocksdb Fsync dir",
                     [&] { return (s = FSDirectoryWrapper::Fsync(o, d)).ok(); });
    return s;
  }
  IOStatus FsyncWithDirOptions(const IOOptions& o, IODebugContext* d,
                               const rocksdb::DirFsyncOptions& dir_options) override {
    IOStatus s;
    rec_->RecordSync(path_, true, "rocksdb Fsync dir", [&] {
      return (s = FSDirectoryWrapper::FsyncWithDirOptions(o, d, dir_options)).ok();
    });
    return s;
  }

 private:
  const std::string path_;
  PowerCutRecorder* const rec_;
};

// The default FileSystem, whose writable files and directories do not sync.
class NoSyncFs final : public rocksdb::FileSystemWrapper {
 public:
  NoSyncFs() : FileSystemWrapper(rocksdb::FileSystem::Default()) {}
  const char* Name() const override { return "LazyblobNoSyncFs"; }

  IOStatus NewWritableFile(const std::string& f, const FileOptions& o,
                           std::unique_ptr<rocksdb::FSWritableFile>* r,
                           IODebugContext* d) override {
    IOStatus s = target()->NewWritableFile(f, o, r, d);
    if (s.ok()) *r = std::make_unique<File>(std::move(*r));
    return s;
  }
  IOStatus NewDirectory(const std::string& name, const IOOptions& o,
                        std::unique_ptr<rocksdb::FSDirectory>* r, IODebugContext* d) override {
    IOStatus s = target()->NewDirectory(name, o, r, d);
    if (s.ok()) *r = std::make_unique<Dir>(std::move(*r));
    return s;
  }

 private:
  struct File final : rocksdb::FSWritableFileOwnerWrapper {
    using FSWritableFileOwnerWrapper::FSWritableFileOwnerWrapper;
    IOStatus Sync(const IOOptions&, IODebugContext*) override { return IOStatus::OK(); }
    IOStatus Fsync(const IOOptions&, IODebugContext*) override { return IOStatus::OK(); }
    IOStatus RangeSync(std::uint64_t, std::uint64_t, const IOOptions&, IODebugContext*) override {
      return IOStatus::OK();
    }
  };
  struct Dir final : rocksdb::FSDirectoryWrapper {
    using FSDirectoryWrapper::FSDirectoryWrapper;
    IOStatus Fsync(const IOOptions&, IODebugContext*) override { return IOStatus::OK(); }
    IOStatus FsyncWithDirOptions(const IOOptions&, IODebugContext*,
                                 const rocksdb::DirFsyncOptions&) override {
      return IOStatus::OK();
    }
  };
};

}  // namespace

// The default FileSystem with every writable file and directory wrapped.
class RecordingFs final : public rocksdb::FileSystemWrapper {
 public:
  explicit RecordingFs(PowerCutRecorder* recorder)
      : FileSystemWrapper(rocksdb::FileSystem::Default()), rec_(recorder) {}
  const char* Name() const override { return "LazyblobPowerCutFs"; }

  IOStatus NewWritableFile(const std::string& f, const FileOptions& o,
                           std::unique_ptr<rocksdb::FSWritableFile>* r,
                           IODebugContext* d) override {
    return Wrap(f, target()->NewWritableFile(f, o, r, d), r);
  }
  IOStatus ReopenWritableFile(const std::string& f, const FileOptions& o,
                              std::unique_ptr<rocksdb::FSWritableFile>* r,
                              IODebugContext* d) override {
    return Wrap(f, target()->ReopenWritableFile(f, o, r, d), r);
  }
  IOStatus ReuseWritableFile(const std::string& f, const std::string& old, const FileOptions& o,
                             std::unique_ptr<rocksdb::FSWritableFile>* r,
                             IODebugContext* d) override {
    return Wrap(f, target()->ReuseWritableFile(f, old, o, r, d), r);
  }
  IOStatus NewDirectory(const std::string& name, const IOOptions& o,
                        std::unique_ptr<rocksdb::FSDirectory>* r, IODebugContext* d) override {
    IOStatus s = target()->NewDirectory(name, o, r, d);
    if (s.ok()) *r = std::make_unique<RecordingDir>(std::move(*r), name, rec_);
    return s;
  }

 private:
  IOStatus Wrap(const std::string& path, IOStatus s, std::unique_ptr<rocksdb::FSWritableFile>* r) {
    if (s.ok()) *r = std::make_unique<RecordingFile>(std::move(*r), path, rec_);
    return s;
  }
  PowerCutRecorder* const rec_;
};

PowerCutRecorder::PowerCutRecorder(std::string root) : root_(Canonical(root)) {
  fs_ = std::make_shared<RecordingFs>(this);
  env_ = rocksdb::NewCompositeEnv(fs_);
  MutexLock lock(&mu_);
  // The baseline: everything under root is durable as it is.
  std::vector<std::string> todo = {root_};
  image_.root = Know(root_);
  while (!todo.empty()) {
    const std::string path = todo.back();
    todo.pop_back();
    const ino_t ino = Know(path);
    auto node = Read(path, image_.nodes[ino].dir);
    if (!node.ok()) {
      ADD_FAILURE() << "power-cut layer: " << node.status().ToString();
      continue;
    }
    image_.nodes[ino] = *node;
    if (!node->dir) continue;
    for (const auto& [name, child] : *node->entries) todo.push_back(path + "/" + name);
  }
}

PowerCutRecorder::~PowerCutRecorder() = default;

int PowerCutRecorder::FDataSync(int fd) {
  int rc = 0;
  RecordSync(FdPath(fd), false, "fdatasync", [&] { return (rc = ::fdatasync(fd)) == 0; });
  return rc;
}

int PowerCutRecorder::FSyncDir(int fd) {
  int rc = 0;
  RecordSync(FdPath(fd), true, "fsync dir", [&] { return (rc = ::fsync(fd)) == 0; });
  return rc;
}

void PowerCutRecorder::SetPhase(std::string phase) {
  MutexLock lock(&mu_);
  phase_ = std::move(phase);
}

std::size_t PowerCutRecorder::syncs() {
  MutexLock lock(&mu_);
  return cuts_.size();
}

std::vector<CutPoint> PowerCutRecorder::CutPoints() {
  MutexLock lock(&mu_);
  std::vector<CutPoint> out = cuts_;
  out.push_back({cuts_.size(), "end", phase_, image_});
  return out;
}

bool PowerCutRecorder::Inside(const std::string& path) const {
  return path == root_ || path.rfind(root_ + "/", 0) == 0;
}

bool PowerCutRecorder::RecordSync(const std::string& path, bool dir, const char* how,
                                  const std::function<bool()>& sync) {
  if (!Inside(path)) return sync();
  MutexLock lock(&mu_);
  const ino_t ino = Know(path);
  auto now = Read(path, dir);  // what the sync makes durable
  const std::string name = path == root_ ? "." : path.substr(root_.size() + 1);
  cuts_.push_back({cuts_.size(), std::string(how) + " " + name, phase_, image_});
  if (!sync()) return false;
  if (ino == 0 || !now.ok()) {
    ADD_FAILURE() << "power-cut layer: cannot read " << path << " at its sync";
    return true;
  }
  image_.nodes[ino] = *now;
  return true;
}

ino_t PowerCutRecorder::Know(const std::string& path) {
  UniqueFd pin(::open(path.c_str(), O_PATH | O_NOFOLLOW | O_CLOEXEC));
  struct stat st {};
  if (!pin || ::fstat(pin.get(), &st) != 0) return 0;
  if (pins_.count(st.st_ino) != 0) return st.st_ino;  // pinned: the same inode
  pins_.emplace(st.st_ino, std::move(pin));
  DurableImage::Node& node = image_.nodes[st.st_ino];  // new: nothing durable yet
  node.dir = S_ISDIR(st.st_mode);
  if (node.dir) {
    node.entries = std::make_shared<const std::map<std::string, ino_t>>();
  } else {
    node.data = std::make_shared<const std::string>();
  }
  return st.st_ino;
}

Result<DurableImage::Node> PowerCutRecorder::Read(const std::string& path, bool dir) {
  DurableImage::Node node;
  node.dir = dir;
  if (!dir) {
    LB_ASSIGN_OR_RETURN(std::string data, ReadAll(path));
    node.data = std::make_shared<const std::string>(std::move(data));
    return node;
  }
  DIR* d = ::opendir(path.c_str());
  if (d == nullptr) return Status::FromErrno(errno, "opendir " + path);
  auto entries = std::make_shared<std::map<std::string, ino_t>>();
  while (dirent* e = ::readdir(d)) {
    const std::string name = e->d_name;
    if (name == "." || name == "..") continue;
    // An entry unlinked meanwhile is not there: the listing is a moment of the directory.
    if (ino_t ino = Know(path + "/" + name); ino != 0) (*entries)[name] = ino;
  }
  ::closedir(d);
  node.entries = std::move(entries);
  return node;
}

Status PowerCutRecorder::Materialize(const DurableImage& image, const std::string& dest) {
  std::vector<std::pair<ino_t, std::string>> todo = {{image.root, dest}};
  while (!todo.empty()) {
    auto [ino, path] = todo.back();
    todo.pop_back();
    auto it = image.nodes.find(ino);
    if (it == image.nodes.end()) return Internal("image names an unknown inode at " + path);
    const DurableImage::Node& node = it->second;
    if (!node.dir) {
      LB_RETURN_IF_ERROR(WriteAll(path, *node.data));
      continue;
    }
    if (::mkdir(path.c_str(), 0755) != 0) return Status::FromErrno(errno, "mkdir " + path);
    for (const auto& [name, child] : *node.entries) todo.emplace_back(child, path + "/" + name);
  }
  return Status::Ok();
}

SkipSyncs::SkipSyncs() : env_(rocksdb::NewCompositeEnv(std::make_shared<NoSyncFs>())) {}
SkipSyncs::~SkipSyncs() = default;

}  // namespace lazyblob::testing
