#include "tools/lazyblobd_read_journal.h"

#include <sys/mman.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <new>

namespace lazyblob {

namespace {
constexpr std::size_t kMaxBlobId = 255;  // the kernel's cookie keys are shorter
}  // namespace

// Written only by the worker; `state` is set to kUsed last, so a worker killed while it
// wrote a slot leaves it ignored rather than torn.
struct ReadJournal::Slot {
  enum : std::uint32_t { kFree = 0, kWriting = 1, kUsed = 2 };
  std::atomic<std::uint32_t> state{kFree};
  std::uint32_t blob_len = 0;
  std::uint64_t offset = 0;
  std::uint64_t length = 0;
  char blob_id[kMaxBlobId + 1] = {};
};
struct ReadJournal::BlobSlot {
  std::atomic<std::uint32_t> state{Slot::kFree};
  std::uint32_t blob_len = 0;
  char blob_id[kMaxBlobId + 1] = {};
};
static_assert(std::atomic<std::uint32_t>::is_always_lock_free,
              "the journal is shared between processes");

bool JournaledRead::Overlaps(std::string_view blob, std::uint64_t off, std::uint64_t len) const {
  if (blob != blob_id) return false;
  const std::uint64_t end = offset + std::max<std::uint64_t>(length, 1);
  const std::uint64_t other_end = off + std::max<std::uint64_t>(len, 1);
  return off < end && offset < other_end;
}

std::string JournaledRead::Describe() const {
  return "blob '" + blob_id + "' [" + std::to_string(offset) + ", +" + std::to_string(length) + ")";
}

Result<std::unique_ptr<ReadJournal>> ReadJournal::Create(int slots, int blob_slots) {
  if (slots <= 0 || blob_slots <= 0) return InvalidArgument("read journal: slots must be > 0");
  const std::size_t read_bytes = sizeof(Slot) * static_cast<std::size_t>(slots);
  const std::size_t bytes = read_bytes + sizeof(BlobSlot) * static_cast<std::size_t>(blob_slots);
  void* p = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (p == MAP_FAILED) return Status::FromErrno(errno, "read journal: mmap");
  Slot* s = static_cast<Slot*>(p);
  for (int i = 0; i < slots; ++i) new (&s[i]) Slot();
  static_assert(sizeof(Slot) % alignof(BlobSlot) == 0);
  BlobSlot* b = reinterpret_cast<BlobSlot*>(static_cast<char*>(p) + read_bytes);
  for (int i = 0; i < blob_slots; ++i) new (&b[i]) BlobSlot();
  return std::unique_ptr<ReadJournal>(new ReadJournal(s, slots, b, blob_slots, bytes));
}

ReadJournal::~ReadJournal() { ::munmap(slots_, bytes_); }

void ReadJournal::BlobOpened(std::string_view blob_id) {
  MutexLock lock(&mu_);
  if (auto it = open_.find(blob_id); it != open_.end()) {
    ++it->second.second;
    return;
  }
  std::vector<bool> used(static_cast<std::size_t>(blob_count_), false);
  for (const auto& [id, v] : open_) {
    if (v.first >= 0) used[static_cast<std::size_t>(v.first)] = true;
  }
  int index = -1;
  for (int i = 0; i < blob_count_ && index < 0; ++i) {
    if (!used[static_cast<std::size_t>(i)]) index = i;
  }
  open_.emplace(std::string(blob_id), std::make_pair(index, 1));
  if (index < 0) return;  // no room: counted, not recorded
  BlobSlot& s = blobs_[index];
  s.state.store(Slot::kWriting, std::memory_order_relaxed);
  const std::size_t n = std::min(blob_id.size(), kMaxBlobId);
  std::memcpy(s.blob_id, blob_id.data(), n);
  s.blob_len = static_cast<std::uint32_t>(n);
  s.state.store(Slot::kUsed, std::memory_order_release);
}

void ReadJournal::BlobClosed(std::string_view blob_id) {
  MutexLock lock(&mu_);
  auto it = open_.find(blob_id);
  if (it == open_.end() || --it->second.second > 0) return;
  if (it->second.first >= 0) {
    blobs_[it->second.first].state.store(Slot::kFree, std::memory_order_release);
  }
  open_.erase(it);
}

std::vector<std::string> ReadJournal::OpenBlobs() const {
  std::vector<std::string> out;
  for (int i = 0; i < blob_count_; ++i) {
    const BlobSlot& s = blobs_[i];
    if (s.state.load(std::memory_order_acquire) != Slot::kUsed) continue;
    out.emplace_back(s.blob_id, std::min<std::size_t>(s.blob_len, kMaxBlobId));
  }
  return out;
}

void ReadJournal::Begin(std::uint32_t msg_id, std::string_view blob_id, std::uint64_t offset,
                        std::uint64_t length) {
  int index = -1;
  {
    MutexLock lock(&mu_);
    if (slot_used_.empty()) {
      slot_used_.assign(static_cast<std::size_t>(count_), false);
      slot_msg_.assign(static_cast<std::size_t>(count_), 0);
    }
    for (int i = 0; i < count_; ++i) {
      if (!slot_used_[static_cast<std::size_t>(i)]) {
        index = i;
        slot_used_[static_cast<std::size_t>(i)] = true;
        slot_msg_[static_cast<std::size_t>(i)] = msg_id;
        break;
      }
    }
  }
  if (index < 0) return;  // more READs in flight than slots: served, not recorded
  Slot& s = slots_[index];
  s.state.store(Slot::kWriting, std::memory_order_relaxed);
  const std::size_t n = std::min(blob_id.size(), kMaxBlobId);
  std::memcpy(s.blob_id, blob_id.data(), n);
  s.blob_len = static_cast<std::uint32_t>(n);
  s.offset = offset;
  s.length = length;
  s.state.store(Slot::kUsed, std::memory_order_release);
}

void ReadJournal::End(std::uint32_t msg_id) {
  MutexLock lock(&mu_);
  for (std::size_t i = 0; i < slot_used_.size(); ++i) {
    if (slot_used_[i] && slot_msg_[i] == msg_id) {
      slots_[i].state.store(Slot::kFree, std::memory_order_release);
      slot_used_[i] = false;
      return;
    }
  }
}

std::vector<JournaledRead> ReadJournal::Snapshot() const {
  std::vector<JournaledRead> out;
  for (int i = 0; i < count_; ++i) {
    const Slot& s = slots_[i];
    if (s.state.load(std::memory_order_acquire) != Slot::kUsed) continue;
    JournaledRead r;
    r.blob_id.assign(s.blob_id, std::min<std::size_t>(s.blob_len, kMaxBlobId));
    r.offset = s.offset;
    r.length = s.length;
    out.push_back(std::move(r));
  }
  return out;
}

void ReadJournal::Clear() {
  for (int i = 0; i < count_; ++i) slots_[i].state.store(Slot::kFree, std::memory_order_release);
  for (int i = 0; i < blob_count_; ++i) {
    blobs_[i].state.store(Slot::kFree, std::memory_order_release);
  }
}

std::vector<JournaledRead> CrashTracker::WorkerDied(const std::vector<JournaledRead>& in_flight,
                                                    Clock::time_point now) {
  deaths_.push_back({now, in_flight});
  while (!deaths_.empty() && now - deaths_.front().when > window_) deaths_.pop_front();
  std::vector<JournaledRead> newly;
  if (limit_ <= 0) return newly;
  for (const JournaledRead& r : in_flight) {
    if (std::find(poisoned_.begin(), poisoned_.end(), r) != poisoned_.end()) continue;
    // A re-delivered READ keeps its exact range, so deaths are counted per exact range.
    const auto deaths = std::count_if(deaths_.begin(), deaths_.end(), [&](const Death& d) {
      return std::find(d.in_flight.begin(), d.in_flight.end(), r) != d.in_flight.end();
    });
    if (deaths >= limit_) {
      poisoned_.push_back(r);
      newly.push_back(r);
    }
  }
  return newly;
}

}  // namespace lazyblob
