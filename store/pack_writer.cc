#include "store/pack_writer.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <map>

#include "store/pack_set.h"

namespace lazyblob {
namespace {

constexpr std::size_t kFlushBytes = 8u << 20;

}  // namespace

Result<std::unique_ptr<PackWriter>> PackWriter::Open(
    const std::string& store_dir, const PackHeader& header_template,
    std::uint64_t pack_target_bytes,
    const std::vector<std::pair<std::uint32_t, std::uint64_t>>& committed_ends, FileOps* ops) {
  std::unique_ptr<PackWriter> w(new PackWriter());
  w->ops_ = ops;
  w->dir_ = store_dir;
  w->header_template_ = header_template;
  w->target_bytes_ = pack_target_bytes;
  LB_ASSIGN_OR_RETURN(std::vector<std::uint32_t> ids, PackSet::ListPackIds(store_dir));
  std::map<std::uint32_t, std::uint64_t> ends(committed_ends.begin(), committed_ends.end());
  bool changed = false;
  // Packs no commit ever referred to (created by a crashed transaction) go entirely;
  // committed packs lose any uncommitted tail.
  for (std::uint32_t id : ids) {
    const std::string path = PackSet::PackPath(store_dir, id);
    auto it = ends.find(id);
    if (it == ends.end()) {
      if (::unlink(path.c_str()) != 0) return Status::FromErrno(errno, "unlink " + path);
      changed = true;
      continue;
    }
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) return Status::FromErrno(errno, "stat " + path);
    if (static_cast<std::uint64_t>(st.st_size) > it->second) {
      if (::truncate(path.c_str(), static_cast<off_t>(it->second)) != 0) {
        return Status::FromErrno(errno, "truncate " + path);
      }
      UniqueFd fd(::open(path.c_str(), O_RDWR | O_CLOEXEC));
      if (!fd || ops->FDataSync(fd.get()) != 0) return Status::FromErrno(errno, "sync " + path);
    }
  }
  if (changed) LB_RETURN_IF_ERROR(SyncDirectory(ops, PackSet::PackDir(store_dir)));
  std::uint32_t last = 0;
  for (std::uint32_t id : ids) {
    if (ends.count(id)) last = std::max(last, id);
  }
  std::uint32_t max_id = ids.empty() ? 0 : ids.back();
  w->next_id_ = std::max(max_id, ends.empty() ? 0u : ends.rbegin()->first) + 1;
  if (last != 0) {
    const std::string path = PackSet::PackPath(store_dir, last);
    w->fd_ = UniqueFd(::open(path.c_str(), O_RDWR | O_CLOEXEC));
    if (!w->fd_) return Status::FromErrno(errno, "open " + path);
    w->pack_id_ = last;
    w->end_ = w->flushed_ = ends[last];
  }
  return w;
}

PackWriter::~PackWriter() = default;

void PackWriter::Begin() {
  begin_pack_ = pack_id_;
  begin_end_ = end_;
  begin_next_id_ = next_id_;
  created_.clear();
  touched_.clear();
  to_sync_.clear();
}

Status PackWriter::OpenNewPack() {
  if (pack_id_ != 0) {
    LB_RETURN_IF_ERROR(Flush());
    to_sync_.push_back(std::move(fd_));
  }
  const std::uint32_t id = next_id_++;
  const std::string path = PackSet::PackPath(dir_, id);
  UniqueFd fd(::open(path.c_str(), O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0644));
  if (!fd) return Status::FromErrno(errno, "create " + path);
  created_.push_back(id);
  dir_dirty_ = true;
  fd_ = std::move(fd);
  pack_id_ = id;
  end_ = flushed_ = 0;
  PackHeader h = header_template_;
  h.pack_id = id;
  auto bytes = EncodePackHeader(h);
  buf_.insert(buf_.end(), bytes.begin(), bytes.end());
  end_ = bytes.size();
  touched_[id] = end_;
  force_new_pack_ = false;
  return Status::Ok();
}

Status PackWriter::Flush() {
  std::size_t done = 0;
  while (done < buf_.size()) {
    ssize_t n = ::pwrite(fd_.get(), buf_.data() + done, buf_.size() - done,
                         static_cast<off_t>(flushed_ + done));
    if (n < 0) {
      if (errno == EINTR) continue;
      return Status::FromErrno(errno, "write pack " + std::to_string(pack_id_));
    }
    done += static_cast<std::size_t>(n);
  }
  flushed_ += buf_.size();
  buf_.clear();
  return Status::Ok();
}

Result<RecordLocation> PackWriter::AppendEncoded(std::span<const std::uint8_t> record) {
  if (pack_id_ == 0 || force_new_pack_ || end_ >= target_bytes_) {
    LB_RETURN_IF_ERROR(OpenNewPack());
  }
  RecordLocation loc{pack_id_, end_};
  buf_.insert(buf_.end(), record.begin(), record.end());
  end_ += record.size();
  touched_[pack_id_] = end_;
  if (buf_.size() >= kFlushBytes) LB_RETURN_IF_ERROR(Flush());
  return loc;
}

Result<RecordLocation> PackWriter::Append(const RecordHeader& header,
                                          std::span<const std::uint8_t> payload) {
  auto h = EncodeRecordHeader(header);
  if (pack_id_ == 0 || force_new_pack_ || end_ >= target_bytes_) {
    LB_RETURN_IF_ERROR(OpenNewPack());
  }
  RecordLocation loc{pack_id_, end_};
  buf_.insert(buf_.end(), h.begin(), h.end());
  buf_.insert(buf_.end(), payload.begin(), payload.end());
  end_ += h.size() + payload.size();
  touched_[pack_id_] = end_;
  if (buf_.size() >= kFlushBytes) LB_RETURN_IF_ERROR(Flush());
  return loc;
}

Status PackWriter::Sync() {
  if (pack_id_ != 0) {
    LB_RETURN_IF_ERROR(Flush());
    if (ops_->FDataSync(fd_.get()) != 0) return Status::FromErrno(errno, "fdatasync pack");
  }
  for (UniqueFd& fd : to_sync_) {
    if (ops_->FDataSync(fd.get()) != 0) return Status::FromErrno(errno, "fdatasync pack");
  }
  to_sync_.clear();
  if (dir_dirty_) {
    LB_RETURN_IF_ERROR(SyncDirectory(ops_, PackSet::PackDir(dir_)));
    dir_dirty_ = false;
  }
  return Status::Ok();
}

Status PackWriter::Rollback() {
  Status first;
  auto note = [&](Status s) {
    if (first.ok() && !s.ok()) first = s;
  };
  buf_.clear();
  to_sync_.clear();
  fd_.reset();
  for (std::uint32_t id : created_) {
    const std::string path = PackSet::PackPath(dir_, id);
    if (::unlink(path.c_str()) != 0 && errno != ENOENT) {
      note(Status::FromErrno(errno, "unlink " + path));
    }
  }
  created_.clear();
  touched_.clear();
  pack_id_ = begin_pack_;
  next_id_ = begin_next_id_;
  end_ = flushed_ = begin_end_;
  if (pack_id_ != 0) {
    const std::string path = PackSet::PackPath(dir_, pack_id_);
    fd_ = UniqueFd(::open(path.c_str(), O_RDWR | O_CLOEXEC));
    if (!fd_) {
      note(Status::FromErrno(errno, "open " + path));
      pack_id_ = 0;
    } else if (::ftruncate(fd_.get(), static_cast<off_t>(begin_end_)) != 0 ||
               ops_->FDataSync(fd_.get()) != 0) {
      note(Status::FromErrno(errno, "truncate " + path));
    }
  }
  return first;
}

std::vector<std::pair<std::uint32_t, std::uint64_t>> PackWriter::TouchedEnds() const {
  return {touched_.begin(), touched_.end()};
}

}  // namespace lazyblob
