#include "transport/access_journal.h"

#include <sys/mman.h>

#include <cerrno>
#include <new>

namespace lazyblob {

namespace {
constexpr std::uint64_t kMagic = 0x31304c4e524a424cull;  // "LBJRNL01"
}  // namespace

struct AccessJournal::Header {
  std::uint64_t magic;
  std::uint32_t slots;
  std::atomic<std::uint32_t> reading;
  std::atomic<std::uint32_t> sweep_fds;
  std::uint32_t reserved;
};

struct AccessJournal::Slot {
  std::atomic<std::uint32_t> state;  // 0 free, 1 recorded
  std::int32_t fd;
  std::uint64_t dev, ino, offset, count;
};

static_assert(std::atomic<std::uint32_t>::is_always_lock_free, "shared-memory atomics");

Result<std::unique_ptr<AccessJournal>> AccessJournal::Create(std::uint32_t slots) {
  if (slots == 0 || slots > (1u << 22)) return InvalidArgument("journal slots must be in [1, 4Mi]");
  const std::size_t bytes = sizeof(Header) + std::size_t{slots} * sizeof(Slot);
  void* region = ::mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (region == MAP_FAILED) return Status::FromErrno(errno, "mmap the access journal");
  // Anonymous memory is zeroed: every slot free, nothing being read.
  auto* h = new (region) Header{};
  h->magic = kMagic;
  h->slots = slots;
  auto* first = reinterpret_cast<Slot*>(static_cast<char*>(region) + sizeof(Header));
  for (std::uint32_t i = 0; i < slots; ++i) new (first + i) Slot{};
  std::unique_ptr<AccessJournal> journal(new AccessJournal(region, bytes));
  journal->Adopt();
  return journal;
}

AccessJournal::AccessJournal(void* region, std::size_t bytes) : region_(region), bytes_(bytes) {}

AccessJournal::~AccessJournal() { ::munmap(region_, bytes_); }

AccessJournal::Header* AccessJournal::header() const { return static_cast<Header*>(region_); }

AccessJournal::Slot* AccessJournal::slot(std::uint32_t i) const {
  return reinterpret_cast<Slot*>(static_cast<char*>(region_) + sizeof(Header)) + i;
}

std::uint32_t AccessJournal::slots() const { return header()->slots; }

std::vector<AccessJournal::Entry> AccessJournal::Recorded() const {
  std::vector<Entry> out;
  for (std::uint32_t i = 0; i < slots(); ++i) {
    const Slot* s = slot(i);
    if (s->state.load(std::memory_order_acquire) != 1) continue;
    out.push_back(Entry{i, s->fd, s->dev, s->ino, s->offset, s->count});
  }
  return out;
}

bool AccessJournal::ReadInProgress() const {
  return header()->reading.load(std::memory_order_acquire) != 0;
}

std::uint32_t AccessJournal::sweep_fds() const {
  return header()->sweep_fds.load(std::memory_order_acquire);
}

void AccessJournal::Adopt() {
  MutexLock lock(&mu_);
  free_.clear();
  for (std::uint32_t i = slots(); i-- > 0;) {
    if (slot(i)->state.load(std::memory_order_acquire) == 0) free_.push_back(i);
  }
}

void AccessJournal::BeginRead(std::uint32_t sweep_fds) {
  header()->sweep_fds.store(sweep_fds, std::memory_order_relaxed);
  header()->reading.store(1, std::memory_order_seq_cst);
}

void AccessJournal::EndRead() { header()->reading.store(0, std::memory_order_release); }

Result<std::uint32_t> AccessJournal::Record(int fd, std::uint64_t dev, std::uint64_t ino,
                                            std::uint64_t offset, std::uint64_t count) {
  std::uint32_t i;
  {
    MutexLock lock(&mu_);
    if (free_.empty()) return Busy("the access journal is full");
    i = free_.back();
    free_.pop_back();
  }
  Slot* s = slot(i);
  s->fd = fd;
  s->dev = dev;
  s->ino = ino;
  s->offset = offset;
  s->count = count;
  s->state.store(1, std::memory_order_release);
  return i;
}

void AccessJournal::Clear(std::uint32_t i) {
  if (i >= slots() || slot(i)->state.exchange(0, std::memory_order_acq_rel) == 0) return;
  MutexLock lock(&mu_);
  free_.push_back(i);
}

std::size_t AccessJournal::free_slots() const {
  MutexLock lock(&mu_);
  return free_.size();
}

}  // namespace lazyblob
