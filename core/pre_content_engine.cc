#include "core/pre_content_engine.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <exception>
#include <limits>
#include <string>

#include "core/log.h"

namespace lazyblob {
namespace {

double SecondsSince(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

void Signal(int event_fd) {
  const std::uint64_t one = 1;
  while (::write(event_fd, &one, sizeof one) < 0 && errno == EINTR) {
  }
}

std::uint64_t SaturatingAdd(std::uint64_t a, std::uint64_t b) {
  return b > std::numeric_limits<std::uint64_t>::max() - a
             ? std::numeric_limits<std::uint64_t>::max()
             : a + b;
}

std::string Describe(const AccessEvent& e) {
  return "event (fd " + std::to_string(e.fd_number) + ", ino " + std::to_string(e.ino) + ", [" +
         std::to_string(e.offset) + ", +" + std::to_string(e.count) + "))";
}

}  // namespace

Status PreContentEngineOptions::Validate() const {
  if (max_events_in_flight == 0 || max_events_in_flight > (1u << 20)) {
    return InvalidArgument("max_events_in_flight must be in [1, 1Mi]");
  }
  return engine.Validate();
}

// One event read and not yet answered. Whoever drops the last reference without answering
// (an error path, an exception, shutdown) denies it with EIO; every path ends its demand
// and its in-flight count.
struct PreContentEngine::Event {
  Event(PreContentEngine* e, PendingAccess p, Clock::time_point r)
      : engine(e), pending(std::move(p)), received(r) {}
  Event(const Event&) = delete;
  Event& operator=(const Event&) = delete;
  ~Event() {
    try {
      if (!pending.answered()) engine->Answer(*this, EIO, RequestResult::kError);
    } catch (...) {
      // Answer() answers before anything in it may throw (stats, logs).
    }
    if (demand) engine->filler_.EndDemand();
    engine->EventDone();
  }

  PreContentEngine* const engine;
  PendingAccess pending;
  const Clock::time_point received;
  bool demand = false;  // BeginDemand was called for it
};

PreContentEngine::PreContentEngine(const PreContentEngineOptions& options, PreContentSource* source,
                                   ChunkSource* chunks, EngineStats* stats)
    : options_(options),
      source_(source),
      stats_(stats),
      pool_(options.engine.ResolvedWorkerThreads()),
      filler_(options.engine.filler(), chunks, stats, &pool_) {}

Result<std::unique_ptr<PreContentEngine>> PreContentEngine::Create(
    const PreContentEngineOptions& options, PreContentSource* source, ChunkSource* chunks,
    EngineStats* stats) {
  LB_RETURN_IF_ERROR(options.Validate());
  if (source == nullptr || chunks == nullptr || stats == nullptr) {
    return InvalidArgument("PreContentEngine needs a source, a chunk source and stats");
  }
  std::unique_ptr<PreContentEngine> engine(new PreContentEngine(options, source, chunks, stats));
  engine->wake_fd_ = UniqueFd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  engine->failed_fd_ = UniqueFd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!engine->wake_fd_ || !engine->failed_fd_) return Status::FromErrno(errno, "eventfd");
  return engine;
}

PreContentEngine::~PreContentEngine() {
  Stop();
  MutexLock lock(&mu_);
  for (auto& [key, file] : files_) stats_->OpenObjects(-1, file->blob_id());
  files_.clear();
}

Result<std::shared_ptr<ServedFile>> PreContentEngine::AddFile(OpenedBlob blob, UniqueFd fill_fd) {
  const Clock::time_point start = Clock::now();
  struct stat st {};
  if (!fill_fd.valid() || ::fstat(fill_fd.get(), &st) != 0) {
    return Status::FromErrno(fill_fd.valid() ? errno : EBADF, "fstat of a fill fd");
  }
  if (!S_ISREG(st.st_mode) || static_cast<std::uint64_t>(st.st_size) < blob.map->size) {
    return InvalidArgument("the cache file of blob '" + blob.map->id +
                           "' is not a regular file of the blob's size");
  }
  auto file = std::make_shared<ServedFile>(std::make_shared<CacheFile>(std::move(blob)),
                                           std::move(fill_fd), st.st_dev, st.st_ino);
  file->cache()->MarkWritable();  // our own sparse file: it takes writes at once
  ScanPresent(*file);
  filler_.AttachTrace(*file->cache());
  {
    MutexLock lock(&mu_);
    if (!files_.emplace(FileKey{file->dev(), file->ino()}, file).second) {
      return AlreadyExists("the cache file of blob '" + file->blob_id() + "' is served already");
    }
  }
  stats_->OpenObjects(+1, file->blob_id());
  stats_->RequestDone(RequestOp::kOpen, RequestResult::kOk, SecondsSince(start));
  return file;
}

void PreContentEngine::ScanPresent(ServedFile& file) {
  // Data extents of the file (an earlier run's writes), walked once; a chunk inside one is
  // written. Its bytes were verified when they were written, as for a cachefiles cache file.
  const std::vector<ChunkExtent>& extents = file.cache()->map().extents;
  std::size_t i = 0;
  off_t at = 0;
  while (i < extents.size()) {
    const off_t data = ::lseek(file.fill_fd(), at, SEEK_DATA);
    if (data < 0) break;  // ENXIO: no data past `at`
    const off_t hole = ::lseek(file.fill_fd(), data, SEEK_HOLE);
    if (hole < 0) break;
    const auto lo = static_cast<std::uint64_t>(data), hi = static_cast<std::uint64_t>(hole);
    for (; i < extents.size() && extents[i].blob_offset < hi; ++i) {
      const ChunkExtent& e = extents[i];
      if (e.blob_offset >= lo && e.blob_offset + e.length <= hi &&
          file.cache()->TryClaim(i) == CacheFile::Claim::kMine) {
        file.cache()->Finish(i, true);
      }
    }
    at = hole;  // a chunk straddling `hole` has a hole in it: not written
  }
}

Status PreContentEngine::Mark(ServedFile& file) {
  if (file.complete() && options_.unmark_complete_files) {
    // Complete files raise no events (an earlier worker may have left a mark on it).
    Status s = source_->Unmark(file.fill_fd());
    if (!s.ok() && s.code() != StatusCode::kNotFound) return s;
    file.marked_.store(false);
    return Status();
  }
  LB_RETURN_IF_ERROR(source_->Mark(file.fill_fd()));
  file.marked_.store(true);
  if (options_.engine.prefetch_on_open && !stopping_.load()) {
    filler_.StartPrefetch(file.cache_, file.fill_fd_);
  }
  if (!stopping_.load()) filler_.StartReplay(file.cache_, file.fill_fd_);
  return Status();
}

void PreContentEngine::RemoveFile(ServedFile& file) {
  bool removed = false;
  {
    MutexLock lock(&mu_);
    auto it = files_.find(FileKey{file.dev(), file.ino()});
    if (it != files_.end() && it->second.get() == &file) {
      files_.erase(it);
      removed = true;
    }
  }
  filler_.Close(*file.cache());
  if (file.marked_.exchange(false)) {
    Status s = source_->Unmark(file.fill_fd());
    if (!s.ok()) Log(LogLevel::kWarn, "unmark of blob '" + file.blob_id() + "': " + s.ToString());
  }
  if (removed) {
    stats_->OpenObjects(-1, file.blob_id());
    stats_->RequestDone(RequestOp::kClose, RequestResult::kOk, 0);
  }
}

std::shared_ptr<ServedFile> PreContentEngine::FindFile(std::uint64_t dev, std::uint64_t ino) const {
  MutexLock lock(&mu_);
  auto it = files_.find(FileKey{dev, ino});
  return it == files_.end() ? nullptr : it->second;
}

std::vector<std::shared_ptr<ServedFile>> PreContentEngine::files() const {
  MutexLock lock(&mu_);
  std::vector<std::shared_ptr<ServedFile>> out;
  for (const auto& [key, file] : files_) out.push_back(file);
  return out;
}

Status PreContentEngine::FillRanges(
    ServedFile& file, std::span<const std::pair<std::uint64_t, std::uint64_t>> ranges) {
  const BlobMap& map = file.cache()->map();
  for (const auto& [offset, length] : ranges) {
    FillRequest request;
    request.file = file.cache();
    request.fd = file.fill_fd();
    std::tie(request.first, request.demand_end) = map.Covering(offset, length);
    request.end = request.demand_end;
    request.asked_begin = std::min(offset, map.size);
    request.asked_end = std::min(SaturatingAdd(offset, length), map.size);
    if (request.first == request.end || file.cache()->AllWritten(request.first, request.end)) {
      continue;
    }
    const FillResult result = filler_.Fill(request);
    if (!result.ok()) {
      const ChunkExtent& e = map.extents[result.failed.front()];
      return IoError("blob '" + map.id + "': the chunk at offset " + std::to_string(e.blob_offset) +
                     " (" + std::to_string(e.length) +
                     " bytes) could not be read from the store (corrupt or missing; " +
                     std::to_string(result.failed.size()) + " chunk(s) failed)");
    }
  }
  return Status();
}

Status PreContentEngine::ReadFilled(ServedFile& file, std::uint64_t offset,
                                    std::span<std::byte> out) {
  if (offset > file.size() || out.size() > file.size() - offset) {
    return InvalidArgument("read past the end of blob '" + file.blob_id() + "'");
  }
  const std::pair<std::uint64_t, std::uint64_t> range{offset, out.size()};
  LB_RETURN_IF_ERROR(FillRanges(file, std::span(&range, 1)));
  std::size_t done = 0;
  while (done < out.size()) {
    const ssize_t n = ::pread(file.fill_fd(), out.data() + done, out.size() - done,
                              static_cast<off_t>(offset + done));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return Status::FromErrno(n < 0 ? errno : EIO, "read back a filled range");
    done += static_cast<std::size_t>(n);
  }
  return Status();
}

Status PreContentEngine::FillAll(ServedFile& file) {
  const std::pair<std::uint64_t, std::uint64_t> all{0, file.size()};
  Status s = FillRanges(file, std::span(&all, 1));
  UnmarkIfComplete(file);
  return s;
}

void PreContentEngine::UnmarkIfComplete(ServedFile& file) {
  if (!options_.unmark_complete_files || !file.marked() || !file.complete() ||
      !file.marked_.exchange(false)) {
    return;
  }
  Status s = source_->Unmark(file.fill_fd());
  if (!s.ok()) {
    Log(LogLevel::kWarn, "unmark of complete blob '" + file.blob_id() + "': " + s.ToString());
    return;
  }
  ++unmarked_;
  Log(LogLevel::kDebug, "blob '" + file.blob_id() + "' is complete: mark removed");
}

Status PreContentEngine::Start() {
  {
    MutexLock lock(&mu_);
    if (started_ || stopped_) return Internal("PreContentEngine started twice or after Stop");
    started_ = true;
  }
  LB_RETURN_IF_ERROR(Recover());
  dispatcher_ = std::thread([this] { DispatchLoop(); });
  return Status();
}

Status PreContentEngine::Recover() {
  LB_ASSIGN_OR_RETURN(AccessOrphans orphans, source_->TakeOrphans());
  const Clock::time_point received = Clock::now();
  if (!orphans.events.empty()) {
    Log(LogLevel::kWarn, "answering " + std::to_string(orphans.events.size()) +
                             " event(s) a previous worker took and never answered");
  }
  {
    MutexLock lock(&mu_);
    in_flight_ += orphans.events.size();
  }
  orphans_ += orphans.events.size();
  for (AccessEvent& e : orphans.events) {
    Dispatch(std::make_shared<Event>(this, PendingAccess(source_, std::move(e)), received));
  }
  {
    MutexLock lock(&mu_);
    while (in_flight_ > 0) capacity_cv_.Wait(&mu_);
  }
  return orphans.unrecorded_possible ? AnswerUnrecorded() : Status();
}

Status PreContentEngine::AnswerUnrecorded() {
  Log(LogLevel::kWarn,
      "a previous worker may have died between reading events and recording them: making "
      "every file complete, then answering every event number it could have had");
  bool all_complete = true;
  for (const std::shared_ptr<ServedFile>& file : files()) {
    Status s = FillAll(*file);
    if (!s.ok() || !file->complete()) {
      all_complete = false;
      Log(LogLevel::kError, "blob '" + file->blob_id() + "' cannot be completed: " + s.ToString());
    }
  }
  // Allowing is safe only when no marked file has a hole left; else the unknown readers
  // get EIO rather than zeros.
  return source_->AnswerUnrecorded(all_complete ? 0 : EIO);
}

void PreContentEngine::Stop() {
  {
    MutexLock lock(&mu_);
    if (stopped_) return;
    stopped_ = true;
  }
  stopping_.store(true);
  filler_.Stop();
  Signal(wake_fd_.get());
  {
    MutexLock lock(&mu_);
    capacity_cv_.SignalAll();
  }
  if (dispatcher_.joinable()) dispatcher_.join();
  pool_.WaitIdle();
  // Starts still inside their recording window keep what they recorded so far.
  std::vector<std::shared_ptr<ServedFile>> open;
  {
    MutexLock lock(&mu_);
    for (const auto& [key, file] : files_) open.push_back(file);
  }
  for (const auto& file : open) filler_.SaveRecord(*file->cache());
}

Status PreContentEngine::source_status() const {
  MutexLock lock(&mu_);
  return source_status_;
}

void PreContentEngine::SetSourceStatus(Status status) {
  MutexLock lock(&mu_);
  source_status_ = std::move(status);
}

PreContentEngine::Counters PreContentEngine::counters() const {
  Counters c;
  c.events = events_.load();
  c.fast_allowed = fast_allowed_.load();
  c.filled = filled_.load();
  c.denied = denied_.load();
  c.orphans = orphans_.load();
  c.unmarked = unmarked_.load();
  return c;
}

bool PreContentEngine::WaitForCapacity() {
  MutexLock lock(&mu_);
  while (in_flight_ >= options_.max_events_in_flight && !stopping_.load()) {
    capacity_cv_.Wait(&mu_);
  }
  return !stopping_.load();
}

void PreContentEngine::EventDone() {
  {
    MutexLock lock(&mu_);
    --in_flight_;
  }
  capacity_cv_.SignalAll();
}

void PreContentEngine::DispatchLoop() {
  while (!stopping_.load()) {
    if (!WaitForCapacity()) break;
    pollfd fds[2] = {{source_->poll_fd(), POLLIN, 0}, {wake_fd_.get(), POLLIN, 0}};
    if (::poll(fds, 2, -1) < 0) {
      if (errno == EINTR) continue;
      SetSourceStatus(Status::FromErrno(errno, "poll on the pre-content source"));
      break;
    }
    if (stopping_.load()) break;
    if ((fds[0].revents & (POLLERR | POLLNVAL)) != 0) {
      SetSourceStatus(IoError("the pre-content source failed (POLLERR)"));
      break;
    }
    if (fds[0].revents != 0 && !DrainSource()) break;
  }
  const Status status = source_status();
  if (!status.ok()) {
    Log(LogLevel::kError, "pre-content source failed, no longer serving: " + status.ToString());
    Signal(failed_fd_.get());
  }
}

bool PreContentEngine::DrainSource() {
  while (!stopping_.load()) {
    std::size_t room;
    {
      MutexLock lock(&mu_);
      room = options_.max_events_in_flight - std::min(in_flight_, options_.max_events_in_flight);
    }
    if (room == 0) return true;
    Result<AccessBatch> batch = source_->Read(room);
    const Clock::time_point received = Clock::now();
    if (!batch.ok()) {
      SetSourceStatus(batch.status());
      return false;
    }
    for (std::size_t i = 0; i < batch->rejected; ++i) stats_->MalformedMessage();
    if (batch->rejected > 0) {
      Log(LogLevel::kWarn, "rejected " + std::to_string(batch->rejected) +
                               " malformed event(s): " + batch->first_rejection.ToString());
    }
    if (batch->events.empty()) return true;
    {
      MutexLock lock(&mu_);
      in_flight_ += batch->events.size();
    }
    events_ += batch->events.size();
    // Every Event is created before any may throw: each ends its own in-flight count.
    std::vector<std::shared_ptr<Event>> events;
    events.reserve(batch->events.size());
    for (AccessEvent& e : batch->events) {
      events.push_back(
          std::make_shared<Event>(this, PendingAccess(source_, std::move(e)), received));
    }
    for (std::shared_ptr<Event>& e : events) Dispatch(std::move(e));
  }
  return true;
}

void PreContentEngine::Dispatch(std::shared_ptr<Event> event) {
  const AccessEvent& e = event->pending.event();
  std::shared_ptr<ServedFile> file = FindFile(e.dev, e.ino);
  if (file == nullptr) {
    Log(LogLevel::kWarn, Describe(e) + " on a file this daemon does not serve: denied (EIO)");
    Answer(*event, EIO, RequestResult::kDropped);
    return;
  }
  const std::uint64_t begin = std::min(e.offset, file->size());
  const std::uint64_t end = std::min(SaturatingAdd(e.offset, e.count), file->size());
  const BlobMap& map = file->cache()->map();
  const auto [first, last] = map.Covering(begin, end - begin);
  stats_->BytesRequested(end - begin);
  // Past the end of the file, or every chunk written already: nothing to wait for.
  if (begin >= end || file->cache()->AllWritten(first, last)) {
    ++fast_allowed_;
    UnmarkIfComplete(*file);
    Answer(*event, 0, RequestResult::kOk);
    return;
  }
  filler_.BeginDemand();  // prefetch yields from now until the event is answered
  event->demand = true;
  stats_->QueueDepth(+1);
  pool_.Submit(TaskPriority::kDemand, [this, file, event, begin, end] {
    stats_->QueueDepth(-1);
    Serve(*file, *event, begin, end);
  });
}

void PreContentEngine::Serve(ServedFile& file, Event& event, std::uint64_t begin,
                             std::uint64_t end) {
  stats_->InFlight(+1);
  struct InFlightDone {
    EngineStats* stats;
    ~InFlightDone() { stats->InFlight(-1); }
  } in_flight_done{stats_};
  const FillResult filled = filler_.FillRange(file.cache(), file.fill_fd(), begin, end - begin);
  if (filled.ok()) {
    ++filled_;
    UnmarkIfComplete(file);  // first: an answered reader finds the file in its final state
    Answer(event, 0, RequestResult::kOk);
    return;
  }
  Log(LogLevel::kWarn, Describe(event.pending.event()) + " of blob '" + file.blob_id() +
                           "': " + std::to_string(filled.failed.size()) +
                           " chunk(s) could not be written: denied (EIO)");
  Answer(event, EIO, RequestResult::kError);
}

void PreContentEngine::Answer(Event& event, int error, RequestResult result) {
  const Clock::time_point start = Clock::now();
  const Status st = error == 0 ? event.pending.Allow() : event.pending.Deny(error);
  stats_->StageTime(Stage::kComplete, SecondsSince(start));
  if (error != 0) ++denied_;
  if (!st.ok()) {
    Log(LogLevel::kWarn, "answering " + Describe(event.pending.event()) + ": " + st.ToString());
    result = RequestResult::kError;
  }
  stats_->RequestDone(RequestOp::kRead, result, SecondsSince(event.received));
}

}  // namespace lazyblob
