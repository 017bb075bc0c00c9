#include "core/request_engine.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <future>
#include <string>
#include <utility>

#include "core/log.h"
#include "core/pending_request.h"

namespace lazyblob {
namespace {

constexpr std::string_view kVolumePrefix = "erofs,";

double SecondsSince(std::chrono::steady_clock::time_point t) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t).count();
}

void Signal(int event_fd) {
  const std::uint64_t one = 1;
  while (::write(event_fd, &one, sizeof one) < 0 && errno == EINTR) {
  }
}

}  // namespace

Status EngineOptions::Validate() const {
  if (worker_threads < 0 || worker_threads > 1024) {
    return InvalidArgument("worker_threads must be in [0, 1024] (0 = default)");
  }
  if (max_queued_requests < 1) return InvalidArgument("max_queued_requests must be >= 1");
  return filler().Validate();
}

int EngineOptions::ResolvedWorkerThreads() const {
  if (worker_threads > 0) return worker_threads;
  const int hw = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  return std::max(8, 4 * hw);
}

CacheFillerOptions EngineOptions::filler() const {
  CacheFillerOptions o;
  o.write_ahead_bytes = write_ahead_bytes;
  o.chunk_cache_bytes = chunk_cache_bytes;
  o.write_ahead_async = write_ahead_async;
  o.trace = trace;
  return o;
}

RequestEngine::RequestEngine(const EngineOptions& options, CacheDevice* device, ChunkSource* source,
                             EngineStats* stats)
    : options_(options),
      device_(device),
      source_(source),
      stats_(stats),
      pool_(options.ResolvedWorkerThreads()),
      filler_(options.filler(), source, stats, &pool_) {}

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
  if (options.restore_on_start) LB_RETURN_IF_ERROR(engine->Restore());
  engine->dispatcher_ = std::thread([e = engine.get()] { e->DispatchLoop(); });
  return engine;
}

RequestEngine::~RequestEngine() {
  Stop();
  MutexLock lock(&mu_);
  for (auto& [id, object] : objects_) stats_->OpenObjects(-1, object->file->map().id);
  objects_.clear();
}

void RequestEngine::Stop() {
  {
    MutexLock lock(&mu_);
    if (stopped_) return;
    stopped_ = true;
  }
  stopping_.store(true);
  filler_.Stop();
  {
    MutexLock lock(&queue_mu_);
    queue_cv_.SignalAll();
  }
  Signal(wake_fd_.get());
  if (dispatcher_.joinable()) dispatcher_.join();
  pool_.WaitIdle();
  // Starts still inside their recording window keep what they recorded so far.
  std::vector<std::shared_ptr<Object>> open;
  {
    MutexLock lock(&mu_);
    for (const auto& [id, object] : objects_) open.push_back(object);
  }
  for (const auto& object : open) filler_.SaveRecord(*object->file);
}

Status RequestEngine::Restore() {
  LB_RETURN_IF_ERROR(device_->Restore().WithContext("restore"));
  stats_->Restored();
  Log(LogLevel::kInfo, "asked the kernel to re-send open objects and pending reads (restore)");
  return Status();
}

Status RequestEngine::device_status() const {
  MutexLock lock(&mu_);
  return device_status_;
}

void RequestEngine::SetDeviceStatus(Status status) {
  MutexLock lock(&mu_);
  device_status_ = std::move(status);
}

std::size_t RequestEngine::open_objects() const {
  MutexLock lock(&mu_);
  return objects_.size();
}

void RequestEngine::DispatchLoop() {
  while (!stopping_.load()) {
    pollfd fds[2] = {{device_->poll_fd(), POLLIN, 0}, {wake_fd_.get(), POLLIN, 0}};
    const int n = ::poll(fds, 2, -1);
    if (n < 0) {
      if (errno == EINTR) continue;
      SetDeviceStatus(Status::FromErrno(errno, "poll on the cache device"));
      break;
    }
    if (stopping_.load()) break;
    if (fds[0].revents != 0 && !DrainDevice(fds[0].revents)) break;
  }
  const Status status = device_status();
  if (!status.ok()) {
    Log(LogLevel::kError, "cache device failed, no longer serving: " + status.ToString());
    Signal(failed_fd_.get());
  }
}

bool RequestEngine::DrainDevice(short revents) {
  bool read_any = false;
  while (WaitForQueueRoom()) {
    Result<std::optional<CacheMessage>> message = device_->Read();
    const Clock::time_point received = Clock::now();
    if (!message.ok()) {
      if (message.status().code() == StatusCode::kMalformed) {
        stats_->MalformedMessage();
        Log(LogLevel::kWarn, "rejected a malformed message: " + message.status().ToString());
        continue;
      }
      if (IsResourcePressure(message.status())) {
        BackOff(message.status());
        return true;
      }
      if (message.status().errno_value() == EEXIST) {
        // The kernel could not install an fd for an OPEN whose object already has one (a
        // reopen that raced a restore; fs/cachefiles/ondemand.c, get_fd) and dropped that
        // request; the device is fine (seen in the VM: tests/e2e/KERNEL_FACTS.md).
        Log(LogLevel::kWarn, "reading the cache device: " + message.status().ToString() +
                                 " (a duplicate OPEN the kernel dropped); reading on");
        continue;
      }
      SetDeviceStatus(message.status());
      return false;
    }
    pressure_backoff_ = std::chrono::milliseconds(0);
    if (!message->has_value()) break;
    read_any = true;
    Dispatch(std::move(**message), received);
  }
  if (!read_any && (revents & (POLLHUP | POLLERR | POLLNVAL)) != 0) {
    SetDeviceStatus(IoError("cache device hung up"));
    return false;
  }
  return true;
}

bool RequestEngine::IsResourcePressure(const Status& status) {
  const int err = status.errno_value();
  return err == EMFILE || err == ENFILE || err == ENOMEM;
}

void RequestEngine::BackOff(const Status& why) {
  // The kernel failed the OPEN it could not give an fd for; the device itself is fine.
  // Waiting lets fds and memory come back; the wake fd still ends the wait on Stop().
  stats_->DeviceReadPressure();
  pressure_backoff_ = std::clamp(pressure_backoff_ * 2, std::chrono::milliseconds(10),
                                 std::chrono::milliseconds(1000));
  Log(LogLevel::kWarn, "reading the cache device: " + why.ToString() + "; retrying in " +
                           std::to_string(pressure_backoff_.count()) +
                           " ms (raise the fd limit if this repeats)");
  pollfd wake{wake_fd_.get(), POLLIN, 0};
  (void)::poll(&wake, 1, static_cast<int>(pressure_backoff_.count()));
}

void RequestEngine::Dispatch(CacheMessage message, Clock::time_point received) {
  if (auto* close = std::get_if<CloseMessage>(&message)) {
    HandleClose(*close, received);
    return;
  }
  if (auto* rejected = std::get_if<RejectedMessage>(&message)) {
    HandleRejected(*rejected, received);
    return;
  }
  stats_->QueueDepth(+1);
  {
    MutexLock lock(&queue_mu_);
    ++queued_;
  }
  if (auto* open = std::get_if<OpenMessage>(&message)) {
    // std::function needs a copyable callable: move the message into a shared_ptr.
    auto owned = std::make_shared<OpenMessage>(std::move(*open));
    pool_.Submit(TaskPriority::kDemand, [this, owned, received] {
      Dequeued();
      HandleOpen(std::move(*owned), received);
    });
    return;
  }
  const ReadMessage read = std::get<ReadMessage>(message);
  filler_.BeginDemand();  // prefetch yields from now until the READ is answered
  pool_.Submit(TaskPriority::kDemand, [this, read, received] {
    Dequeued();
    HandleRead(read, received);
  });
}

bool RequestEngine::WaitForQueueRoom() {
  MutexLock lock(&queue_mu_);
  while (queued_ >= options_.max_queued_requests && !stopping_.load()) queue_cv_.Wait(&queue_mu_);
  return !stopping_.load();
}

void RequestEngine::Dequeued() {
  stats_->QueueDepth(-1);
  MutexLock lock(&queue_mu_);
  if (queued_-- == options_.max_queued_requests) queue_cv_.Signal();
}

std::shared_ptr<RequestEngine::Object> RequestEngine::FindObject(std::uint32_t object_id) {
  MutexLock lock(&mu_);
  auto it = objects_.find(object_id);
  return it == objects_.end() ? nullptr : it->second;
}

void RequestEngine::HandleOpen(OpenMessage message, Clock::time_point received) {
  stats_->InFlight(+1);
  PendingOpen pending(device_, message.msg_id);
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

  // The blob's access record loads meanwhile: from a registry, both cost round trips.
  std::future<std::shared_ptr<Result<AccessTrace>>> record = filler_.LoadRecordAhead(blob_id);
  Result<OpenedBlob> blob = source_->OpenBlob(blob_id);
  if (!blob.ok()) {
    return fail(blob.status().code() == StatusCode::kNotFound ? ENOENT : EIO,
                blob.status().ToString());
  }
  const std::uint64_t size = blob->map->size;
  auto object = std::make_shared<Object>();
  object->object_id = message.object_id;
  object->anon_fd = std::make_shared<const UniqueFd>(std::move(message.anon_fd));
  object->file = std::make_shared<CacheFile>(std::move(*blob));
  filler_.AttachTrace(*object->file, std::move(record));
  InstallObject(object);
  stats_->OpenObjects(+1, blob_id);
  if (options_.read_observer != nullptr) options_.read_observer->ObjectOpened(blob_id);
  Status st = pending.Reply(static_cast<std::int64_t>(size));
  if (!st.ok()) {
    Log(LogLevel::kWarn, "copen for blob '" + blob_id + "' failed: " + st.ToString());
  } else {
    Log(LogLevel::kDebug, "opened blob '" + blob_id + "' as object " +
                              std::to_string(message.object_id) + ", " + std::to_string(size) +
                              " bytes");
  }
  stats_->RequestDone(RequestOp::kOpen, st.ok() ? RequestResult::kOk : RequestResult::kError,
                      SecondsSince(received));
  stats_->InFlight(-1);
  if (st.ok() && options_.prefetch_on_open && !stopping_.load()) {
    filler_.StartPrefetch(object->file, object->anon_fd);
  }
  if (st.ok() && !stopping_.load()) filler_.StartReplay(object->file, object->anon_fd);
}

void RequestEngine::InstallObject(std::shared_ptr<Object> object) {
  std::shared_ptr<Object> replaced;
  {
    MutexLock lock(&mu_);
    std::shared_ptr<Object>& slot = objects_[object->object_id];
    replaced = std::exchange(slot, std::move(object));
  }
  if (replaced == nullptr) return;
  // The kernel never reuses a live id; if it happens, the old object is gone for good.
  Log(LogLevel::kWarn, "OPEN reused live object id " + std::to_string(replaced->object_id));
  filler_.Close(*replaced->file);
  stats_->OpenObjects(-1, replaced->file->map().id);
  if (options_.read_observer != nullptr) {
    options_.read_observer->ObjectClosed(replaced->file->map().id);
  }
  // `replaced` goes here, before the caller replies: its hold is not kept past the OPEN.
}

void RequestEngine::HandleRejected(const RejectedMessage& message, Clock::time_point received) {
  stats_->MalformedMessage();
  const bool open = message.opcode == CacheOpcode::kOpen;
  Log(LogLevel::kWarn, std::string("rejected a malformed ") + (open ? "OPEN" : "READ") + " (msg " +
                           std::to_string(message.msg_id) + ", object " +
                           std::to_string(message.object_id) + "): " + message.reason +
                           "; failing it");
  const RequestOp op = open ? RequestOp::kOpen : RequestOp::kRead;
  Status st;
  if (open) {
    st = PendingOpen(device_, message.msg_id).Reply(-EINVAL);
  } else if (std::shared_ptr<Object> object = FindObject(message.object_id)) {
    st = PendingRead(device_, message.msg_id, object->anon_fd).Complete();  // no data: EIO
  } else {
    Log(LogLevel::kWarn, "malformed READ " + std::to_string(message.msg_id) +
                             " names no open object: it cannot be answered");
    stats_->RequestDone(op, RequestResult::kDropped, SecondsSince(received));
    return;
  }
  if (!st.ok()) Log(LogLevel::kWarn, "failing a malformed request: " + st.ToString());
  stats_->RequestDone(op, RequestResult::kError, SecondsSince(received));
}

void RequestEngine::HandleClose(const CloseMessage& message, Clock::time_point received) {
  std::shared_ptr<Object> object;
  {
    MutexLock lock(&mu_);
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
  filler_.Close(*object->file);
  stats_->OpenObjects(-1, object->file->map().id);
  if (options_.read_observer != nullptr) {
    options_.read_observer->ObjectClosed(object->file->map().id);
  }
  stats_->RequestDone(RequestOp::kClose, RequestResult::kOk, SecondsSince(received));
}

void RequestEngine::HandleRead(const ReadMessage& message, Clock::time_point received) {
  struct DemandDone {
    CacheFiller& filler;
    ~DemandDone() { filler.EndDemand(); }
  } demand_done{filler_};
  stats_->InFlight(+1);
  std::shared_ptr<Object> object = FindObject(message.object_id);
  if (object == nullptr) {
    // No anon fd to complete on: the kernel only sends READs for objects it opened, so
    // this is a protocol violation or a READ that raced a CLOSE.
    Log(LogLevel::kWarn, "READ " + std::to_string(message.msg_id) + " for unknown object " +
                             std::to_string(message.object_id) + " dropped");
    stats_->RequestDone(RequestOp::kRead, RequestResult::kDropped, SecondsSince(received));
    stats_->InFlight(-1);
    return;
  }
  PendingRead pending(device_, message.msg_id, object->anon_fd);
  stats_->BytesRequested(message.length);
  ReadObserver* const observer = options_.read_observer;
  struct ObserverEnd {
    ReadObserver* observer;
    std::uint32_t msg_id;
    ~ObserverEnd() {
      if (observer != nullptr) observer->EndRead(msg_id);
    }
  } observer_end{observer, message.msg_id};
  if (observer != nullptr && !observer->BeginRead(message.msg_id, object->file->map().id,
                                                  message.offset, message.length)) {
    Log(LogLevel::kError, "READ " + std::to_string(message.msg_id) + " of blob '" +
                              object->file->map().id + "' [" + std::to_string(message.offset) +
                              ", +" + std::to_string(message.length) +
                              ") failed without serving it: it crashed workers before");
    const Status st = pending.Complete();  // no data written: the reader gets EIO
    if (!st.ok()) Log(LogLevel::kWarn, "completing a refused READ: " + st.ToString());
    stats_->RequestDone(RequestOp::kRead, RequestResult::kError, SecondsSince(received));
    stats_->InFlight(-1);
    return;
  }
  // A READ comes only once the cache file is attached to the anon fd: from now on, prefetch
  // and replay may write (before, the kernel refused their writes with ENOBUFS).
  object->file->MarkWritable();
  const FillResult filled =
      filler_.FillRange(object->file, object->anon_fd, message.offset, message.length);
  const Clock::time_point complete_start = Clock::now();
  const Status st = pending.Complete();
  stats_->StageTime(Stage::kComplete, SecondsSince(complete_start));
  if (!st.ok()) {
    Log(LogLevel::kWarn, "completing READ " + std::to_string(message.msg_id) + " of blob '" +
                             object->file->map().id + "' failed: " + st.ToString());
  }
  stats_->RequestDone(RequestOp::kRead,
                      filled.ok() && st.ok() ? RequestResult::kOk : RequestResult::kError,
                      SecondsSince(received));
  stats_->InFlight(-1);
}

}  // namespace lazyblob
