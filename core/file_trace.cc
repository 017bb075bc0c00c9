#include "core/file_trace.h"

#include <utility>

namespace lazyblob {
namespace {

constexpr std::uint8_t kDemanded = 1, kListed = 2, kReplayed = 4;

}  // namespace

FileTrace::FileTrace(std::shared_ptr<const BlobMap> map, bool replaying)
    : map_(std::move(map)), replaying_(replaying), flags_(map_->extents.size(), 0) {}

std::shared_ptr<FileTrace> FileTrace::Recording(std::shared_ptr<const BlobMap> map,
                                                Clock::time_point opened,
                                                std::chrono::milliseconds window) {
  std::shared_ptr<FileTrace> t(new FileTrace(std::move(map), /*replaying=*/false));
  t->record_end_ = opened + window;
  return t;
}

std::shared_ptr<FileTrace> FileTrace::Replaying(std::shared_ptr<const BlobMap> map,
                                                std::vector<std::size_t> order) {
  std::shared_ptr<FileTrace> t(new FileTrace(std::move(map), /*replaying=*/true));
  t->order_ = std::move(order);
  MutexLock lock(&t->mu_);
  for (std::size_t i : t->order_) t->flags_[i] |= kListed;
  return t;
}

FileTrace::Demand FileTrace::NoteDemand(std::size_t first, std::size_t demand_end, std::size_t end,
                                        Clock::time_point now) {
  Demand d;
  MutexLock lock(&mu_);
  if (replaying_) {
    bool all_replayed = first < demand_end, off_record = false;
    for (std::size_t i = first; i < demand_end; ++i) {
      all_replayed = all_replayed && (flags_[i] & kReplayed) != 0;
      off_record = off_record || (flags_[i] & kListed) == 0;
      flags_[i] |= kDemanded;
    }
    d.prefetch_hit = all_replayed;
    off_record_ += off_record;
    return d;
  }
  if (taken_) return d;
  if (now >= record_end_) {
    d.record_due = !recorded_.empty();
    return d;
  }
  for (std::size_t i = first; i < end; ++i) {
    if ((flags_[i] & kListed) != 0) continue;
    flags_[i] |= kListed;
    if (recorded_.size() < AccessTrace::kMaxEntries) {
      recorded_.push_back(map_->extents[i].blob_offset / AccessTrace::kBlockBytes);
    }
  }
  return d;
}

bool FileTrace::Recording(Clock::time_point now) const {
  if (replaying_) return false;
  MutexLock lock(&mu_);
  return !taken_ && now < record_end_;
}

std::optional<AccessTrace> FileTrace::TakeRecord() {
  MutexLock lock(&mu_);
  if (replaying_ || taken_ || recorded_.empty()) return std::nullopt;
  taken_ = true;
  AccessTrace trace;
  trace.blob_size = map_->size;
  trace.blocks = std::move(recorded_);
  recorded_.clear();
  return trace;
}

void FileTrace::Replayed(std::size_t i) {
  MutexLock lock(&mu_);
  flags_[i] |= kReplayed;
}

int FileTrace::off_record_demands() const {
  MutexLock lock(&mu_);
  return off_record_;
}

std::uint64_t FileTrace::UnusedReplayBytes() const {
  MutexLock lock(&mu_);
  std::uint64_t bytes = 0;
  for (std::size_t i = 0; i < flags_.size(); ++i) {
    if ((flags_[i] & (kReplayed | kDemanded)) == kReplayed) bytes += map_->extents[i].length;
  }
  return bytes;
}

}  // namespace lazyblob
