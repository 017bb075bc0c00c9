#include "tools/lazyblobd_fanotify.h"

#include <poll.h>
#include <signal.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <filesystem>
#include <memory>

#include "core/pre_content_engine.h"
#include "tools/lazyblobd_control.h"
#include "tools/lazyblobd_fanotify_mounts.h"
#include "tools/lazyblobd_keeper.h"
#include "transport/access_journal.h"
#include "transport/fanotify_source.h"

namespace lazyblob {
namespace {

constexpr const char* kControlKey = "control";
constexpr int kStopRetryMs = 2000;

// Events in flight each hold an fd; the journal's sweep after a crash tries every number
// below this limit. Raised to the hard limit, at most 64 Ki.
std::uint32_t RaiseFdLimit() {
  rlimit rl{};
  if (::getrlimit(RLIMIT_NOFILE, &rl) != 0) return 1024;
  const rlim_t want = std::min<rlim_t>(rl.rlim_max, 65536);
  if (rl.rlim_cur < want) {
    rl.rlim_cur = want;
    ::setrlimit(RLIMIT_NOFILE, &rl);
    ::getrlimit(RLIMIT_NOFILE, &rl);
  }
  return static_cast<std::uint32_t>(std::min<rlim_t>(rl.rlim_cur, 65536));
}

// The control socket: the supervisor's (from a predecessor) or a new one handed to it.
Result<UniqueFd> ControlSocket(const DaemonConfig& config, KeeperClient& keeper) {
  auto& kept = keeper.initial();
  auto it = kept.find(kControlKey);
  if (it != kept.end() && it->second.fd.valid()) return std::move(it->second.fd);
  LB_ASSIGN_OR_RETURN(UniqueFd fd, ListenControl(config.control_socket));
  LB_RETURN_IF_ERROR(keeper.Put(kControlKey, config.control_socket, fd.get()));
  return fd;
}

// Everything one fanotify worker runs, in construction order (destroyed in reverse).
struct FanotifyWorker {
  KeeperClient keeper;
  std::unique_ptr<AccessJournal> own_journal;  // only without a supervisor
  std::unique_ptr<FanotifySource> source;
  std::unique_ptr<PreContentEngine> engine;
  std::unique_ptr<FanotifyMounts> mounts;
  UniqueFd control_fd;
  std::unique_ptr<ControlServer> control;
};

Status StartWorker(const DaemonConfig& config, WorkerLaunch& launch, ChunkSource* store,
                   EngineStats* stats, AccessTraceStore* traces, FanotifyWorker& w) {
  if (launch.keeper_fd.valid()) {
    LB_ASSIGN_OR_RETURN(w.keeper, KeeperClient::Connect(std::move(launch.keeper_fd)));
  }
  AccessJournal* journal = launch.journal;
  if (journal == nullptr) {
    LB_ASSIGN_OR_RETURN(w.own_journal, AccessJournal::Create());
    journal = w.own_journal.get();
  }
  const std::uint32_t fd_limit = RaiseFdLimit();
  LB_ASSIGN_OR_RETURN(auto group, FanotifyGroup::Adopt(std::move(launch.device_fd)));
  LB_ASSIGN_OR_RETURN(w.source, FanotifySource::Create(std::move(group), journal, fd_limit));
  PreContentEngineOptions o;
  o.engine.worker_threads = config.worker_threads;
  o.engine.write_ahead_bytes = config.write_ahead_bytes;
  o.engine.chunk_cache_bytes = config.chunk_cache_bytes;
  o.engine.prefetch_on_open = config.prefetch_on_open;
  o.engine.trace = config.engine().trace;
  o.engine.trace.store = traces;
  o.max_events_in_flight = std::min<std::size_t>(journal->slots(), fd_limit / 2);
  o.unmark_complete_files = !config.keep_marks;
  LB_ASSIGN_OR_RETURN(w.engine, PreContentEngine::Create(o, w.source.get(), store, stats));
  // Absolute: `lazyblob mount` passes these paths to mount(2) from its own directory.
  const std::string files_dir = std::filesystem::absolute(config.cache_dir + "/fanotify").string();
  w.mounts = std::make_unique<FanotifyMounts>(files_dir, store, w.engine.get(), &w.keeper);
  w.mounts->Restore(w.keeper.initial());
  // Orphans of a dead predecessor are answered before any new event is read.
  LB_RETURN_IF_ERROR(w.engine->Start());
  LB_ASSIGN_OR_RETURN(w.control_fd, ControlSocket(config, w.keeper));
  LB_ASSIGN_OR_RETURN(w.control, ControlServer::Start(w.control_fd.get(), w.mounts.get()));
  spdlog::info(
      "fanotify front end: sparse cache files in {}, control socket {} "
      "({} worker threads, write-ahead {} bytes, at most {} events in flight)",
      files_dir, config.control_socket, o.engine.ResolvedWorkerThreads(),
      o.engine.write_ahead_bytes, o.max_events_in_flight);
  return Status();
}

// Unmounts or completes everything; true when the group may close without any reader
// seeing a hole.
bool StopServing(FanotifyWorker& w) {
  const FanotifyMounts::StopReport r = w.mounts->PrepareStop();
  spdlog::info("stop: {} unmounted, {} already gone, {} busy (files completed)", r.unmounted,
               r.gone, r.busy);
  if (r.blocking.empty()) return true;
  spdlog::error(
      "stop: {} blob(s) in use cannot be completed (first: '{}'); still serving so that no "
      "reader sees zeros. Unmount them (lazyblob umount) or SIGKILL to force",
      r.blocking.size(), r.blocking.front());
  return false;
}

}  // namespace

int RunFanotifyWorker(const DaemonConfig& config, WorkerLaunch& launch, ChunkSource* store,
                      EngineStats* stats, AccessTraceStore* traces,
                      const std::function<std::optional<std::uint64_t>()>& reload) {
  for (int i = 0; i < launch.restart_count; ++i) stats->WorkerRestart();
  FanotifyWorker w;
  Status s = StartWorker(config, launch, store, stats, traces, w);
  if (!s.ok()) {
    spdlog::error("fanotify front end: {}", s.ToString());
    return kExitFailure;
  }
  if (launch.on_ready) launch.on_ready();

  sigset_t set;
  sigemptyset(&set);
  for (int sig : {SIGTERM, SIGINT, SIGHUP}) sigaddset(&set, sig);
  UniqueFd sigfd(::signalfd(-1, &set, SFD_CLOEXEC));
  if (!sigfd) return kExitFailure;
  int code = kExitOk;
  bool stopping = false;
  for (;;) {
    pollfd fds[2] = {{sigfd.get(), POLLIN, 0}, {w.engine->failed_fd(), POLLIN, 0}};
    const int n = ::poll(fds, 2, stopping ? kStopRetryMs : -1);
    if (n < 0 && errno != EINTR) return kExitFailure;
    if (fds[1].revents != 0) {
      // Not kExitDeviceFailed: the supervisor must restart a worker (whose first job is to
      // answer what this one read), not give up and close the group.
      spdlog::error("reading the fanotify group failed: {}", w.engine->source_status().ToString());
      code = kExitFailure;
      break;
    }
    if (n > 0 && (fds[0].revents & POLLIN) != 0) {
      signalfd_siginfo si;
      if (::read(sigfd.get(), &si, sizeof si) != sizeof si) continue;
      if (si.ssi_signo == SIGHUP) {
        if (auto wa = reload()) w.engine->set_write_ahead_bytes(*wa);
        continue;
      }
      if (!stopping) spdlog::info("signal {}: unmounting, then stopping", si.ssi_signo);
      stopping = true;
      w.control->Stop();
    }
    if (stopping && StopServing(w)) break;
  }
  w.control.reset();
  w.engine->Stop();
  if (code == kExitOk) ::unlink(config.control_socket.c_str());
  spdlog::info("worker exits ({})", code);
  return code;
}

}  // namespace lazyblob
