#include "tools/lazyblobd_fanotify_mounts.h"

#include <fcntl.h>
#include <sched.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <cerrno>
#include <cstring>
#include <filesystem>
#include <random>
#include <set>

#include "store/erofs_layout.h"
#include "store/hashing.h"

#ifndef STATX_MNT_ID
#define STATX_MNT_ID 0x00001000U
#endif
#ifndef STATX_MNT_ID_UNIQUE
#define STATX_MNT_ID_UNIQUE 0x00004000U
#endif

namespace lazyblob {
namespace {

constexpr std::uint64_t kMetadataAlign = 4096;

std::string JoinLines(const std::string& first, const std::vector<std::string>& rest) {
  std::string out = first;
  for (const std::string& s : rest) out += "\n" + s;
  return out;
}

std::vector<std::string> SplitLines(const std::string& text) {
  std::vector<std::string> out;
  std::size_t at = 0;
  while (at <= text.size()) {
    const std::size_t end = text.find('\n', at);
    out.push_back(text.substr(at, end == std::string::npos ? std::string::npos : end - at));
    if (end == std::string::npos) break;
    at = end + 1;
  }
  return out;
}

std::uint64_t NewToken() {
  std::random_device rd;
  return (static_cast<std::uint64_t>(rd()) << 32) ^ rd() ^ 1;
}

std::uint64_t OwnMountNamespace() {
  struct stat st {};
  return ::stat("/proc/self/ns/mnt", &st) == 0 ? st.st_ino : 0;
}

// In this process (or a forked child that entered the client's namespace): unmounts `dir`
// if it still holds mount `mnt_id`. No allocation: it runs in a child of a threaded process.
int UnmountIfSame(const char* dir, std::uint64_t mnt_id) {
  struct statx stx {};
  if (::statx(AT_FDCWD, dir, AT_NO_AUTOMOUNT | AT_SYMLINK_NOFOLLOW,
              STATX_MNT_ID | STATX_MNT_ID_UNIQUE, &stx) != 0 ||
      stx.stx_mnt_id != mnt_id) {
    return ENOENT;
  }
  return ::umount2(dir, UMOUNT_NOFOLLOW) == 0 ? 0 : errno;
}

}  // namespace

FanotifyMounts::FanotifyMounts(std::string files_dir, ChunkSource* store, PreContentEngine* engine,
                               const KeeperClient* keeper)
    : files_dir_(std::move(files_dir)), store_(store), engine_(engine), keeper_(keeper) {
  std::error_code ec;
  std::filesystem::create_directories(files_dir_, ec);
}

std::string FanotifyMounts::PathFor(const BlobMap& map) const {
  const auto* id = reinterpret_cast<const std::uint8_t*>(map.id.data());
  std::string name =
      map.id.size() <= 100
          ? HexOf(std::span(id, map.id.size()))
          : "s" + HexOf(Sha256Of(std::as_bytes(std::span(map.id.data(), map.id.size()))));
  // The content's identity: the size and every chunk's place and key.
  std::string identity = std::to_string(map.size);
  for (const ChunkExtent& e : map.extents) {
    identity += std::to_string(e.blob_offset) + ":" + std::to_string(e.length) + ":";
    identity.append(reinterpret_cast<const char*>(e.key.bytes.data()), e.key.bytes.size());
  }
  const ChunkKey h = ChunkKeyOf(std::as_bytes(std::span(identity.data(), identity.size())));
  return files_dir_ + "/" + name + "." + h.ToHex().substr(0, 16);
}

Result<FanotifyMounts::File> FanotifyMounts::OpenFileLocked(const std::string& id) {
  LB_ASSIGN_OR_RETURN(OpenedBlob blob, store_->OpenBlob(id));
  File file;
  file.path = PathFor(*blob.map);
  const std::uint64_t size = blob.map->size;
  // Opened before any mark: writes through this fd never raise events (FANOTIFY_FACTS.md).
  UniqueFd fd(::open(file.path.c_str(), O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600));
  if (!fd) return Status::FromErrno(errno, "create the cache file " + file.path);
  struct stat st {};
  if (::fstat(fd.get(), &st) != 0) return Status::FromErrno(errno, "fstat " + file.path);
  // Whole blocks: the filler pads the blob's last block (core/anon_fd_writer.h).
  const std::uint64_t want = AlignUp(size);
  if (static_cast<std::uint64_t>(st.st_size) != want &&
      ::ftruncate(fd.get(), static_cast<off_t>(want)) != 0) {
    return Status::FromErrno(errno, "size the cache file " + file.path);
  }
  LB_ASSIGN_OR_RETURN(file.served, engine_->AddFile(std::move(blob), std::move(fd)));
  return file;
}

Status FanotifyMounts::PrefillMetadata(ServedFile& file, std::size_t devices) {
  // Metadata is read through the primary's page cache and raises no event: it must be
  // present before the mount. Parse the image through the engine (each read makes its
  // chunks present), then fill every whole chunk under the merged metadata ranges.
  ErofsReadFn read = [&](std::uint64_t offset, std::span<std::byte> out) {
    return engine_->ReadFilled(file, offset, out);
  };
  Result<ErofsLayout> layout = ErofsLayoutParser::Parse(read, file.size());
  if (!layout.ok()) {
    return InvalidArgument("blob '" + file.blob_id() +
                           "' is not a mountable EROFS image: " + layout.status().ToString());
  }
  if (layout->devices.size() != devices) {
    std::string tags;
    for (const ErofsDevice& d : layout->devices) tags += (tags.empty() ? "'" : ", '") + d.tag + "'";
    return InvalidArgument(
        "EROFS image '" + file.blob_id() + "' has " + std::to_string(layout->devices.size()) +
        " extra device(s)" + (tags.empty() ? "" : " (tags " + tags + ")") + " but " +
        std::to_string(devices) + " --device blob(s) were given: name one per device, in order");
  }
  std::vector<std::pair<std::uint64_t, std::uint64_t>> ranges;
  for (const ErofsRange& r : layout->MergedMetadata(kMetadataAlign)) {
    ranges.emplace_back(r.offset, r.length);
  }
  return engine_->FillRanges(file, ranges);
}

Result<std::string> FanotifyMounts::AcquireLocked(const std::string& id, bool primary,
                                                  std::size_t devices) {
  auto it = files_.find(id);
  if (it == files_.end()) {
    LB_ASSIGN_OR_RETURN(File file, OpenFileLocked(id));
    // The keeper holds the fill fd before the mark: a successor can always fill the file.
    Status kept = keeper_->Put("file:" + id, file.path, file.served->fill_fd());
    if (!kept.ok()) {
      engine_->RemoveFile(*file.served);
      return kept.WithContext("hand the fill fd to the supervisor");
    }
    it = files_.emplace(id, std::move(file)).first;
  }
  File& file = it->second;
  ++file.refs;
  Status s;
  if (primary && !file.metadata_ready) {
    s = PrefillMetadata(*file.served, devices);
    file.metadata_ready = s.ok();
  }
  if (s.ok() && !file.served->marked()) s = engine_->Mark(*file.served);
  if (!s.ok()) {
    ReleaseLocked(id);
    return s;
  }
  return file.path;
}

void FanotifyMounts::ReleaseLocked(const std::string& id) {
  auto it = files_.find(id);
  if (it == files_.end() || --it->second.refs > 0) return;
  // Unmarked before the keeper forgets it: a successor never sees a marked file it lacks.
  engine_->RemoveFile(*it->second.served);
  keeper_->Drop("file:" + id).IgnoreError();
  spdlog::info("released the cache file of blob '{}' ({})", id,
               it->second.served->complete() ? "complete" : "partly filled");
  files_.erase(it);
}

void FanotifyMounts::ReleaseAllLocked(const std::vector<std::string>& ids) {
  for (const std::string& id : ids) ReleaseLocked(id);
}

Result<FanotifyMounts::Prepared> FanotifyMounts::Prepare(const std::string& id,
                                                         const std::vector<std::string>& devices,
                                                         const std::string& dir) {
  MutexLock lock(&mu_);
  Prepared out;
  std::vector<std::string> ids;
  Status s;
  for (std::size_t i = 0; i <= devices.size() && s.ok(); ++i) {
    const std::string& blob = i == 0 ? id : devices[i - 1];
    Result<std::string> path = AcquireLocked(blob, i == 0, devices.size());
    if (!path.ok()) {
      s = path.status();
      if (s.code() == StatusCode::kNotFound) {
        s = NotFound("blob '" + blob + "' is not in the store (see 'lazyblob ls')");
      }
      break;
    }
    ids.push_back(blob);
    out.paths.push_back(*path);
  }
  if (s.ok()) {
    out.token = NewToken();
    s = keeper_->Put("pending:" + std::to_string(out.token), JoinLines(dir, ids), -1);
  }
  if (!s.ok()) {
    ReleaseAllLocked(ids);
    return s;
  }
  pending_[out.token] = Pending{ids, dir};
  spdlog::info("prepared blob '{}' ({} device(s)) for a mount on {} (token {})", id, devices.size(),
               dir, out.token);
  return out;
}

Status FanotifyMounts::Abort(std::uint64_t token) {
  MutexLock lock(&mu_);
  auto it = pending_.find(token);
  if (it == pending_.end()) return NotFound("no pending mount with token " + std::to_string(token));
  keeper_->Drop("pending:" + std::to_string(token)).IgnoreError();
  ReleaseAllLocked(it->second.ids);
  pending_.erase(it);
  return Status();
}

Status FanotifyMounts::Mounted(std::uint64_t token, const std::string& dir, std::uint64_t mnt_id,
                               UniqueFd ns_fd) {
  MutexLock lock(&mu_);
  auto it = pending_.find(token);
  if (it == pending_.end()) return NotFound("no pending mount with token " + std::to_string(token));
  struct stat st {};
  if (ns_fd.valid() && ::fstat(ns_fd.get(), &st) == 0 && st.st_ino == OwnMountNamespace()) {
    ns_fd.reset();  // the client's namespace is ours: umount2 directly
  }
  const std::string key = "mount:" + std::to_string(mnt_id);
  LB_RETURN_IF_ERROR(keeper_->Put(key, JoinLines(dir, it->second.ids), ns_fd.get()));
  keeper_->Drop("pending:" + std::to_string(token)).IgnoreError();
  mounts_[mnt_id] = Mount{dir, std::move(it->second.ids), std::move(ns_fd)};
  pending_.erase(it);
  spdlog::info("mounted on {} (mount id {})", dir, mnt_id);
  return Status();
}

Result<std::string> FanotifyMounts::FindMount(std::uint64_t mnt_id) const {
  MutexLock lock(&mu_);
  auto it = mounts_.find(mnt_id);
  if (it == mounts_.end())
    return NotFound("not a lazyblob mount (mount id " + std::to_string(mnt_id) + ")");
  return it->second.dir;
}

Status FanotifyMounts::Unmounted(std::uint64_t mnt_id) {
  MutexLock lock(&mu_);
  auto it = mounts_.find(mnt_id);
  if (it == mounts_.end())
    return NotFound("not a lazyblob mount (mount id " + std::to_string(mnt_id) + ")");
  keeper_->Drop("mount:" + std::to_string(mnt_id)).IgnoreError();
  spdlog::info("unmounted {} (mount id {})", it->second.dir, mnt_id);
  ReleaseAllLocked(it->second.ids);
  mounts_.erase(it);
  return Status();
}

ControlMessage FanotifyMounts::Describe() const {
  MutexLock lock(&mu_);
  ControlMessage m = OkReply();
  for (const auto& [id, f] : files_) {
    m.Add("file", id + ":" + (f.served->complete() ? "complete" : "incomplete") + ":" +
                      (f.served->marked() ? "marked" : "unmarked") + ":" + std::to_string(f.refs));
  }
  for (const auto& [mnt_id, mount] : mounts_)
    m.Add("mount", std::to_string(mnt_id) + ":" + mount.dir);
  for (const auto& [token, p] : pending_) m.Add("pending", std::to_string(token) + ":" + p.dir);
  return m;
}

void FanotifyMounts::RestoreFileLocked(const std::string& id, KeptEntry& entry) {
  Result<OpenedBlob> blob = store_->OpenBlob(id);
  if (!blob.ok() || PathFor(*blob->map) != entry.value) {
    // Served by the previous worker but gone or changed since: its readers get EIO.
    spdlog::error("blob '{}' can no longer be served ({}); its readers get EIO", id,
                  blob.ok() ? "its content changed in the store" : blob.status().ToString());
    return;
  }
  Result<std::shared_ptr<ServedFile>> served =
      engine_->AddFile(std::move(*blob), std::move(entry.fd));
  if (!served.ok()) {
    spdlog::error("blob '{}': {}", id, served.status().ToString());
    return;
  }
  Status s = engine_->Mark(**served);
  if (!s.ok()) spdlog::error("re-marking blob '{}': {}", id, s.ToString());
  files_[id] = File{*served, entry.value, 0, true};
}

void FanotifyMounts::Restore(std::map<std::string, KeptEntry, std::less<>>& kept) {
  MutexLock lock(&mu_);
  std::vector<std::string> referenced;
  for (auto& [key, entry] : kept) {
    if (key.rfind("file:", 0) == 0) RestoreFileLocked(key.substr(5), entry);
  }
  for (auto& [key, entry] : kept) {
    std::vector<std::string> lines = SplitLines(entry.value);
    const std::string dir = lines.front();
    const std::vector<std::string> ids(lines.begin() + 1, lines.end());
    try {
      if (key.rfind("mount:", 0) == 0) {
        mounts_[std::stoull(key.substr(6))] = Mount{dir, ids, std::move(entry.fd)};
      } else if (key.rfind("pending:", 0) == 0) {
        pending_[std::stoull(key.substr(8))] = Pending{ids, dir};
      } else {
        continue;
      }
    } catch (const std::exception&) {
      continue;
    }
    referenced.insert(referenced.end(), ids.begin(), ids.end());
  }
  for (const std::string& id : referenced) {
    auto it = files_.find(id);
    if (it != files_.end()) ++it->second.refs;
  }
  std::vector<std::string> unused;
  for (auto& [id, f] : files_) {
    if (f.refs == 0) unused.push_back(id);
  }
  for (const std::string& id : unused) {
    files_[id].refs = 1;
    ReleaseLocked(id);
  }
  spdlog::info("restored {} file(s), {} mount(s), {} pending prepare(s) from the supervisor",
               files_.size(), mounts_.size(), pending_.size());
}

int FanotifyMounts::Unmount(const Mount& mount, std::uint64_t mnt_id) {
  if (!mount.ns_fd.valid()) return UnmountIfSame(mount.dir.c_str(), mnt_id);
  // Another mount namespace: setns() needs a single-threaded caller, so a child does it.
  const pid_t pid = ::fork();
  if (pid < 0) return errno;
  if (pid == 0) {
    if (::setns(mount.ns_fd.get(), CLONE_NEWNS) != 0) ::_exit(EPERM);
    ::_exit(UnmountIfSame(mount.dir.c_str(), mnt_id));
  }
  int st = 0;
  if (::waitpid(pid, &st, 0) != pid || !WIFEXITED(st)) return ECHILD;
  return WEXITSTATUS(st);
}

FanotifyMounts::StopReport FanotifyMounts::PrepareStop() {
  MutexLock lock(&mu_);
  StopReport report;
  std::set<std::string> in_use;
  for (auto it = mounts_.begin(); it != mounts_.end();) {
    const int err = Unmount(it->second, it->first);
    if (err == 0 || err == ENOENT) {
      err == 0 ? ++report.unmounted : ++report.gone;
      spdlog::info("stop: {} {} (mount id {})",
                   err == 0 ? "unmounted" : "already gone:", it->second.dir, it->first);
      keeper_->Drop("mount:" + std::to_string(it->first)).IgnoreError();
      ReleaseAllLocked(it->second.ids);
      it = mounts_.erase(it);
      continue;
    }
    spdlog::warn("stop: {} stays mounted ({}): completing its files so it needs no daemon",
                 it->second.dir, std::strerror(err));
    ++report.busy;
    in_use.insert(it->second.ids.begin(), it->second.ids.end());
    ++it;
  }
  for (const auto& [token, p] : pending_) {
    spdlog::warn("stop: the mount for token {} on {} was never reported: completing its files",
                 token, p.dir);
    ++report.busy;
    in_use.insert(p.ids.begin(), p.ids.end());
  }
  for (const std::string& id : in_use) {
    auto it = files_.find(id);
    if (it == files_.end()) {
      report.blocking.push_back(id);
      continue;
    }
    Status s = engine_->FillAll(*it->second.served);
    if (!s.ok() || !it->second.served->complete()) {
      spdlog::error("stop: blob '{}' cannot be completed: {}", id, s.ToString());
      report.blocking.push_back(id);
    }
  }
  return report;
}

}  // namespace lazyblob
