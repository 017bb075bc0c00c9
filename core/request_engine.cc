#include "core/request_engine.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <deque>
#include <exception>
#include <span>
#include <string>
#include <utility>
#include <vector>

#include "core/aligned_buffer.h"
#include "core/anon_fd_writer.h"
#include "core/log.h"
#include "core/pending_request.h"
#include "core/tsan.h"

namespace lazyblob {
namespace {

constexpr std::string_view kVolumePrefix = "erofs,";

double SecondsSince(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

double Seconds(std::chrono::nanoseconds d) { return std::chrono::duration<double>(d).count(); }

// The source's split of one ReadChunk, if it reported one.
void ReportStages(EngineStats* stats, const ChunkReadTimings& t) {
  if (t.total() == std::chrono::nanoseconds::zero()) return;
  stats->StageTime(Stage::kLookup, Seconds(t.lookup));
  stats->StageTime(Stage::kRead, Seconds(t.read));
  stats->StageTime(Stage::kDecompress, Seconds(t.decompress));
  stats->StageTime(Stage::kVerify, Seconds(t.verify));
}

void Signal(int event_fd) {
  const std::uint64_t one = 1;
  while (::write(event_fd, &one, sizeof one) < 0 && errno == EINTR) {
  }
}

// True when [offset, offset + length) already holds data in the cache file.
bool RangePresent(int fd, std::uint64_t offset, std::uint64_t length) {
  const off_t hole = ::lseek(fd, static_cast<off_t>(offset), SEEK_HOLE);
  return hole >= 0 && static_cast<std::uint64_t>(hole) >= offset + length;
}

std::uint64_t Overlap(std::uint64_t a0, std::uint64_t a1, std::uint64_t b0, std::uint64_t b1) {
  const std::uint64_t lo = std::max(a0, b0), hi = std::min(a1, b1);
  return hi > lo ? hi - lo : 0;
}

}  // namespace

Status EngineOptions::Validate() const {
  if (worker_threads < 0 || worker_threads > 1024) {
    return InvalidArgument("worker_threads must be in [0, 1024] (0 = default)");
  }
  if (write_ahead_bytes > (1ull << 30)) return InvalidArgument("write_ahead_bytes above 1 GiB");
  return Status();
}

int EngineOptions::ResolvedWorkerThreads() const {
  if (worker_threads > 0) return worker_threads;
  const int hw = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  return std::max(8, 4 * hw);
}

RequestEngine::RequestEngine(const EngineOptions& options, CacheDevice* device, ChunkSource* source,
                             EngineStats* stats)
    : options_(options),
      device_(device),
      source_(source),
      stats_(stats),
      write_ahead_bytes_(options.write_ahead_bytes),
      cache_(options.chunk_cache_bytes),
      // Workers of both arenas plus one spare; max_allowed_parallelism counts a master.
      parallelism_(tbb::global_control::max_allowed_parallelism,
                   static_cast<std::size_t>(options.ResolvedWorkerThreads()) + 2),
      arena_(options.ResolvedWorkerThreads(), 0),
      prefetch_arena_(1, 0, tbb::task_arena::priority::low) {}

Result<std::unique_ptr<RequestEngine>> RequestEngine::Start(const EngineOptions& options,
                                                            CacheDevice* device,
                                                            ChunkSource* source,
                                                            EngineStats* stats) {
  LB_RETURN_IF_ERROR(options.Validate());
  if (device == nullptr || source == nullptr || stats == nullptr) {
    return InvalidArgument("RequestEngine needs a device, a chunk source and stats");
  }
  std::unique_ptr<RequestEngine> engine(new RequestEngine(options, device, source, stats));
  engine->wake_fd_ = UniqueFd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  engine->failed_fd_ = UniqueFd(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
  if (!engine->wake_fd_ || !engine->failed_fd_) return Status::FromErrno(errno, "eventfd");
  engine->arena_.initialize();
  engine->prefetch_arena_.initialize();
  engine->dispatcher_ = std::thread([e = engine.get()] { e->DispatchLoop(); });
  return engine;
}

RequestEngine::~RequestEngine() {
  Stop();
  std::lock_guard lock(mu_);
  for (auto& [id, object] : objects_) stats_->OpenObjects(-1, object->map().id);
  objects_.clear();
}

void RequestEngine::Stop() {
  {
    std::lock_guard lock(mu_);
    if (stopped_) return;
    stopped_ = true;
  }
  stopping_.store(true);
  Signal(wake_fd_.get());
  if (dispatcher_.joinable()) dispatcher_.join();
  std::unique_lock lock(mu_);
  idle_cv_.wait(lock, [&] { return tasks_ == 0; });
}

Status RequestEngine::Restore() {
  LB_RETURN_IF_ERROR(device_->Restore());
  stats_->Restored();
  Log(LogLevel::kInfo, "asked the kernel to re-send open objects and pending reads (restore)");
  return Status();
}

Status RequestEngine::device_status() const {
  std::lock_guard lock(mu_);
  return device_status_;
}

std::size_t RequestEngine::open_objects() const {
  std::lock_guard lock(mu_);
  return objects_.size();
}

void RequestEngine::DispatchLoop() {
  while (!stopping_.load()) {
    pollfd fds[2] = {{device_->poll_fd(), POLLIN, 0}, {wake_fd_.get(), POLLIN, 0}};
    const int n = ::poll(fds, 2, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      std::lock_guard lock(mu_);
      device_status_ = Status::FromErrno(errno, "poll on the cache device");
      break;
    }
    if (stopping_.load()) break;
    if (fds[0].revents != 0 && !DrainDevice(fds[0].revents)) break;
  }
  if (!device_status().ok()) {
    Log(LogLevel::kError, "cache device failed, no longer serving: " + device_status().ToString());
    Signal(failed_fd_.get());
  }
}

bool RequestEngine::DrainDevice(short revents) {
  bool read_any = false;
  while (!stopping_.load()) {
    Result<std::optional<CacheMessage>> message = device_->Read();
    const Clock::time_point received = Clock::now();
    if (!message.ok()) {
      if (message.status().code() == StatusCode::kMalformed) {
        stats_->MalformedMessage();
        Log(LogLevel::kWarn, "rejected a malformed message: " + message.status().ToString());
        continue;
      }
      std::lock_guard lock(mu_);
      device_status_ = message.status();
      return false;
    }
    if (!message->has_value()) break;
    read_any = true;
    Dispatch(std::move(**message), received);
  }
  if (!read_any && (revents & (POLLHUP | POLLERR | POLLNVAL)) != 0) {
    std::lock_guard lock(mu_);
    device_status_ = IoError("cache device hung up");
    return false;
  }
  return true;
}

void RequestEngine::Submit(tbb::task_arena& arena, std::function<void()> work) {
  std::deque<std::function<void()>>* queue = &arena == &arena_ ? &queue_ : &prefetch_queue_;
  {
    std::lock_guard lock(mu_);
    queue->push_back(std::move(work));
    ++tasks_;
  }
  // The work itself travels through `queue` under mu_; oneTBB only carries a wake-up.
  // libtbb is not built with TSan, which cannot see its hand-off: tell TSan about it
  // (release here, acquire in RunNext) and hide the closure's construction inside
  // libtbb's task (TSan builds only; the closure holds two pointers).
  TsanRelease(this);
  TsanIgnoreWritesBegin();
  arena.enqueue([this, queue] { RunNext(queue); });
  TsanIgnoreWritesEnd();
}

void RequestEngine::RunNext(std::deque<std::function<void()>>* queue) {
  TsanAcquire(this);
  std::function<void()> work;
  {
    std::lock_guard lock(mu_);
    work = std::move(queue->front());
    queue->pop_front();
  }
  try {
    work();
  } catch (const std::exception& e) {
    // The request's Pending* owner already answered it while unwinding.
    Log(LogLevel::kError, std::string("request failed with an exception: ") + e.what());
  }
  work = nullptr;  // release captured objects before reporting idle
  std::lock_guard lock(mu_);
  if (--tasks_ == 0) idle_cv_.notify_all();
}

void RequestEngine::Dispatch(CacheMessage message, Clock::time_point received) {
  if (auto* close = std::get_if<CloseMessage>(&message)) {
    HandleClose(*close, received);
    return;
  }
  stats_->QueueDepth(+1);
  if (auto* open = std::get_if<OpenMessage>(&message)) {
    // std::function needs a copyable callable: move the message into a shared_ptr.
    auto owned = std::make_shared<OpenMessage>(std::move(*open));
    Submit(arena_, [this, owned, received] {
      stats_->QueueDepth(-1);
      HandleOpen(std::move(*owned), received);
    });
    return;
  }
  const ReadMessage read = std::get<ReadMessage>(message);
  demand_in_flight_.fetch_add(1);
  Submit(arena_, [this, read, received] {
    stats_->QueueDepth(-1);
    HandleRead(read, received);
  });
}

std::shared_ptr<CacheObject> RequestEngine::FindObject(std::uint32_t object_id) {
  std::lock_guard lock(mu_);
  auto it = objects_.find(object_id);
  return it == objects_.end() ? nullptr : it->second;
}

void RequestEngine::HandleOpen(OpenMessage message, Clock::time_point received) {
  stats_->InFlight(+1);
  PendingOpen pending(device_, message.msg_id);
  auto fd = std::make_shared<const UniqueFd>(std::move(message.anon_fd));
  const std::string& blob_id = message.cookie_key;
  auto fail = [&](int err, const std::string& why) {
    Log(LogLevel::kWarn, "OPEN of blob '" + blob_id + "' (volume '" + message.volume_key +
                             "', object " + std::to_string(message.object_id) +
                             ") refused: " + why);
    Status st = pending.Reply(-err);
    if (!st.ok()) Log(LogLevel::kWarn, "copen failed: " + st.ToString());
    stats_->RequestDone(RequestOp::kOpen, RequestResult::kError, SecondsSince(received));
    stats_->InFlight(-1);
  };
  if (message.volume_key.substr(0, kVolumePrefix.size()) != kVolumePrefix ||
      message.volume_key.size() == kVolumePrefix.size()) {
    return fail(EINVAL, "volume key is not 'erofs,<fsid|domain_id>'");
  }
  if (blob_id.empty()) return fail(EINVAL, "empty cookie key");

  std::shared_ptr<void> lease;
  if (options_.lease_blob) {
    Result<std::shared_ptr<void>> l = options_.lease_blob(blob_id);
    if (!l.ok()) {
      return fail(l.status().code() == StatusCode::kNotFound ? ENOENT : EIO,
                  "lease: " + l.status().ToString());
    }
    lease = std::move(*l);
  }
  Result<std::shared_ptr<const BlobMap>> map = source_->OpenBlob(blob_id);
  if (!map.ok()) {
    return fail(map.status().code() == StatusCode::kNotFound ? ENOENT : EIO,
                map.status().ToString());
  }
  auto object =
      std::make_shared<CacheObject>(message.object_id, std::move(fd), *map, std::move(lease));
  {
    std::lock_guard lock(mu_);
    auto [it, inserted] = objects_.insert_or_assign(message.object_id, object);
    if (!inserted) {
      Log(LogLevel::kWarn, "OPEN reused live object id " + std::to_string(message.object_id));
    }
  }
  stats_->OpenObjects(+1, blob_id);
  Status st = pending.Reply(static_cast<std::int64_t>((*map)->size));
  if (!st.ok()) {
    Log(LogLevel::kWarn, "copen for blob '" + blob_id + "' failed: " + st.ToString());
  } else {
    Log(LogLevel::kDebug, "opened blob '" + blob_id + "' as object " +
                              std::to_string(message.object_id) + ", " +
                              std::to_string((*map)->size) + " bytes");
  }
  stats_->RequestDone(RequestOp::kOpen, st.ok() ? RequestResult::kOk : RequestResult::kError,
                      SecondsSince(received));
  stats_->InFlight(-1);
  if (st.ok() && options_.prefetch_on_open && !stopping_.load()) {
    Submit(prefetch_arena_, [this, object] { Prefetch(object); });
  }
}

void RequestEngine::HandleClose(const CloseMessage& message, Clock::time_point received) {
  std::shared_ptr<CacheObject> object;
  {
    std::lock_guard lock(mu_);
    auto it = objects_.find(message.object_id);
    if (it != objects_.end()) {
      object = std::move(it->second);
      objects_.erase(it);
    }
  }
  if (object == nullptr) {
    Log(LogLevel::kDebug, "CLOSE for unknown object " + std::to_string(message.object_id));
    stats_->RequestDone(RequestOp::kClose, RequestResult::kDropped, SecondsSince(received));
    return;
  }
  object->MarkClosed();
  stats_->OpenObjects(-1, object->map().id);
  stats_->RequestDone(RequestOp::kClose, RequestResult::kOk, SecondsSince(received));
}

void RequestEngine::HandleRead(const ReadMessage& message, Clock::time_point received) {
  stats_->InFlight(+1);
  std::shared_ptr<CacheObject> object = FindObject(message.object_id);
  if (object == nullptr) {
    // No anon fd to complete on: the kernel only sends READs for objects it opened, so
    // this is a protocol violation or a READ that raced a CLOSE.
    Log(LogLevel::kWarn, "READ " + std::to_string(message.msg_id) + " for unknown object " +
                             std::to_string(message.object_id) + " dropped");
    stats_->RequestDone(RequestOp::kRead, RequestResult::kDropped, SecondsSince(received));
    stats_->InFlight(-1);
    demand_in_flight_.fetch_sub(1);
    return;
  }
  PendingRead pending(device_, message.msg_id, object->fd());
  stats_->BytesRequested(message.length);
  const BlobMap& map = object->map();
  const std::uint64_t req_end = message.offset + std::min(message.length, map.size);
  const auto [first, last] = map.Covering(message.offset, message.length);
  // The window goes out before the completion, so the reader's next READs find it; the
  // READ's chunks and the window are written together, spread over idle workers.
  const std::uint64_t base = write_ahead_bytes_.load();
  const std::size_t window_end = stopping_.load() || base == 0
                                     ? last
                                     : object->NextWindow(first, last, base, base * kWindowGrowth);
  const bool ok = ServeChunks(object, first, last, window_end, message.offset, req_end);
  const Clock::time_point complete_start = Clock::now();
  Status st = pending.Complete();
  stats_->StageTime(Stage::kComplete, SecondsSince(complete_start));
  if (!st.ok()) {
    Log(LogLevel::kWarn, "completing READ " + std::to_string(message.msg_id) + " of blob '" +
                             map.id + "' failed: " + st.ToString());
  }
  stats_->RequestDone(RequestOp::kRead, ok && st.ok() ? RequestResult::kOk : RequestResult::kError,
                      SecondsSince(received));
  stats_->InFlight(-1);
  demand_in_flight_.fetch_sub(1);
}

// One READ's chunks plus its window, cut into groups of about kGroupBytes that threads
// take in order from `next`; `done` counts finished groups (guarded by mu).
struct RequestEngine::GroupJob {
  std::shared_ptr<CacheObject> object;
  std::vector<std::pair<std::size_t, std::size_t>> groups;
  std::size_t demand_end = 0;
  std::uint64_t req_begin = 0, req_end = 0;
  std::atomic<std::size_t> next{0};
  std::mutex mu;
  std::condition_variable cv;
  std::size_t done = 0;  // guarded by mu
  bool ok = true;        // guarded by mu
};

bool RequestEngine::ServeChunks(const std::shared_ptr<CacheObject>& object, std::size_t first,
                                std::size_t demand_end, std::size_t end, std::uint64_t req_begin,
                                std::uint64_t req_end) {
  auto job = std::make_shared<GroupJob>();
  job->object = object;
  job->demand_end = demand_end;
  job->req_begin = req_begin;
  job->req_end = req_end;
  const std::vector<ChunkExtent>& extents = object->map().extents;
  std::uint64_t bytes = 0;
  std::size_t group_begin = first;
  for (std::size_t i = first; i < end; ++i) {
    bytes += extents[i].length;
    if (bytes >= kGroupBytes || i + 1 == end) {
      job->groups.emplace_back(group_begin, i + 1);
      group_begin = i + 1;
      bytes = 0;
    }
  }
  if (job->groups.empty()) return true;
  // Helpers take groups this thread has not reached yet. One that runs after every group
  // was taken finds none and ends, so this thread never waits for a queued task: it only
  // waits for groups other threads are writing.
  const std::size_t helpers =
      std::min(job->groups.size() - 1,
               static_cast<std::size_t>(std::max(0, options_.ResolvedWorkerThreads() - 1)));
  for (std::size_t h = 0; h < helpers; ++h) Submit(arena_, [this, job] { RunGroups(*job); });
  RunGroups(*job);
  std::unique_lock lock(job->mu);
  job->cv.wait(lock, [&] { return job->done == job->groups.size(); });
  return job->ok;
}

void RequestEngine::RunGroups(GroupJob& job) {
  for (;;) {
    const std::size_t g = job.next.fetch_add(1);
    if (g >= job.groups.size()) return;
    const auto [begin, end] = job.groups[g];
    const bool ok = WriteGroup(*job.object, begin, end, job.demand_end, /*use_cache=*/true,
                               job.req_begin, job.req_end);
    {
      std::lock_guard lock(job.mu);
      job.ok &= ok;
      ++job.done;
    }
    job.cv.notify_all();
  }
}

bool RequestEngine::WriteGroup(CacheObject& object, std::size_t begin, std::size_t end,
                               std::size_t demand_end, bool use_cache, std::uint64_t req_begin,
                               std::uint64_t req_end) {
  const BlobMap& map = object.map();
  const int fd = object.fd()->get();
  bool ok = true;
  std::vector<std::pair<std::size_t, ChunkCache::Buffer>> run;  // claimed, loaded, unwritten
  std::vector<std::span<const std::byte>> pieces;
  auto flush = [&] {
    if (run.empty()) return;
    pieces.clear();
    for (const auto& [i, buffer] : run)
      pieces.emplace_back(buffer->data(), AlignUp(map.extents[i].length));
    const Clock::time_point write_start = Clock::now();
    // Whole blocks: the blob's unaligned tail goes out as one zero-padded block.
    Status st = WriteBlocks(fd, map.extents[run.front().first].blob_offset, pieces);
    stats_->StageTime(Stage::kWrite, SecondsSince(write_start));
    for (const auto& [i, buffer] : run) {
      object.Finish(i, st.ok());
      if (!st.ok()) {
        ok &= i >= demand_end;
        continue;
      }
      const std::uint64_t at = map.extents[i].blob_offset;
      const std::uint64_t bytes = AlignUp(map.extents[i].length);
      stats_->BytesWritten(bytes, bytes - Overlap(at, at + bytes, req_begin, req_end));
    }
    if (!st.ok()) Log(LogLevel::kError, "blob '" + map.id + "': " + st.ToString());
    run.clear();
  };
  std::uint64_t run_bytes = 0;
  for (std::size_t i = begin; i < end; ++i) {
    const bool demand = i < demand_end;
    // A closing object or a stopping engine writes no more window.
    if (!demand && (object.closed() || stopping_.load())) break;
    CacheObject::Claim claim = object.TryClaim(i);
    if (claim == CacheObject::Claim::kBusy && demand) {
      flush();  // never wait while holding claims
      run_bytes = 0;
      claim = object.ClaimOrWait(i);
    }
    // Present, or (window) another thread's: it breaks the run.
    if (claim != CacheObject::Claim::kMine) {
      flush();
      run_bytes = 0;
      continue;
    }
    const ChunkExtent& extent = map.extents[i];
    if (RangePresent(fd, extent.blob_offset, extent.length)) {
      object.Finish(i, true);
      flush();
      run_bytes = 0;
      continue;
    }
    Result<ChunkCache::Buffer> buffer = LoadChunk(map, i, use_cache);
    if (!buffer.ok()) {
      object.Finish(i, false);
      ok &= !demand;
      Log(LogLevel::kError, "blob '" + map.id + "': chunk " + extent.key.ToHex() + " at offset " +
                                std::to_string(extent.blob_offset) + " (" +
                                std::to_string(extent.length) +
                                " bytes) not served: " + buffer.status().ToString());
      flush();
      run_bytes = 0;
      continue;
    }
    if (run_bytes + AlignUp(extent.length) > kGroupBytes) {
      flush();
      run_bytes = 0;
    }
    run.emplace_back(i, std::move(*buffer));
    run_bytes += AlignUp(extent.length);
  }
  flush();
  return ok;
}

void RequestEngine::Prefetch(const std::shared_ptr<CacheObject>& object) {
  const BlobMap& map = object->map();
  for (std::size_t i = 0; i < map.extents.size(); ++i) {
    // Demand READs first: wait while any is queued or running.
    while (demand_in_flight_.load() > 0 && !stopping_.load() && !object->closed()) {
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
    if (object->closed() || stopping_.load()) return;
    // Prefetched chunks bypass the shared cache: a whole blob would evict the hot set.
    WriteGroup(*object, i, i + 1, /*demand_end=*/0, /*use_cache=*/false, 0, 0);
  }
  Log(LogLevel::kDebug, "prefetched blob '" + map.id + "'");
}

Result<ChunkCache::Buffer> RequestEngine::LoadChunk(const BlobMap& map, std::size_t i,
                                                    bool use_cache) {
  const ChunkExtent& extent = map.extents[i];
  auto loader = [&]() -> Result<ChunkCache::Buffer> {
    auto buffer = std::make_shared<AlignedBuffer>(AlignUp(extent.length));
    ChunkReadTimings timings;
    const Clock::time_point t0 = Clock::now();
    Status st = source_->ReadChunk(extent, buffer->span(), &timings);
    const double seconds = SecondsSince(t0);
    ReportStages(stats_, timings);
    if (!st.ok()) {
      stats_->ChunkLookup(st.code() == StatusCode::kCorruption ? ChunkLookupResult::kCorrupt
                                                               : ChunkLookupResult::kMissing);
      return st;
    }
    stats_->Decompressed(
        timings.total() > std::chrono::nanoseconds::zero() ? Seconds(timings.decompress) : seconds);
    stats_->ChunkLookup(ChunkLookupResult::kStoreHit);
    return ChunkCache::Buffer(std::move(buffer));
  };
  if (!use_cache) return loader();
  LB_ASSIGN_OR_RETURN(ChunkCache::Lookup lookup, cache_.GetOrLoad(extent.key, loader));
  if (lookup.source != ChunkCache::Source::kLoaded) {
    stats_->ChunkLookup(ChunkLookupResult::kCacheHit);
  }
  return std::move(lookup.buffer);
}

}  // namespace lazyblob
