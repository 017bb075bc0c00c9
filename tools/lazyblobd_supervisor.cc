#include "tools/lazyblobd_supervisor.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>

#include "store/blob_lease.h"
#include "tools/lazyblobd_config.h"
#include "tools/lazyblobd_frontend.h"
#include "tools/lazyblobd_keeper.h"
#include "tools/lazyblobd_logging.h"
#include "tools/lazyblobd_read_journal.h"
#include "tools/lazyblobd_worker.h"
#include "transport/cachefiles_device.h"
#include "transport/fd_passing.h"
#include "transport/sim_device.h"

namespace lazyblob {
namespace {

using Clock = std::chrono::steady_clock;

bool UnderSystemd() { return std::getenv("NOTIFY_SOCKET") != nullptr; }

Result<UniqueFd> DupFd(int fd) {
  UniqueFd dup(::fcntl(fd, F_DUPFD_CLOEXEC, 3));
  if (!dup) return Status::FromErrno(errno, "dup device fd");
  return dup;
}

Result<UniqueFd> OpenDevice(const DaemonConfig& config) {
  if (!config.sim_socket.empty()) {
    LB_ASSIGN_OR_RETURN(auto sim, SimDevice::Connect(config.sim_socket));
    return DupFd(sim->fd());
  }
  CachefilesDeviceOptions o;
  o.device_path = config.device_path;
  o.cache_dir = config.cache_dir;
  LB_ASSIGN_OR_RETURN(auto dev, CachefilesDevice::Open(o));
  return DupFd(dev->fd());
}

// More than any worker serves at once (--threads), so every READ in flight is recorded.
constexpr int kReadJournalSlots = 1024;

// A worker died: which READs it left unanswered, and whether some of them now count as
// the READ that kills every worker.
// Also returns the leases of the blobs it had open (KERNEL_FACTS (l): after `restore` the
// kernel reopens an idle object only at its next READ, so without them `rm` would succeed
// on a mounted blob), for the next worker.
// `in_flight` gets the READs it left unanswered.
std::vector<BlobLease> AccountForDeath(ReadJournal* journal, CrashTracker* tracker,
                                       const DaemonConfig& config,
                                       std::vector<JournaledRead>* in_flight_out) {
  std::vector<BlobLease> leases;
  if (journal == nullptr) return leases;
  for (const std::string& blob : journal->OpenBlobs()) {
    if (config.store_dir.empty()) break;  // an origin-only node has no leases
    auto lease = BlobLease::Acquire(config.store_dir, blob);
    if (!lease.ok()) {
      spdlog::warn("lease of open blob '{}' not kept: {}", blob, lease.status().ToString());
      continue;
    }
    leases.push_back(std::move(*lease));
  }
  if (!leases.empty()) {
    spdlog::info("holding the leases of {} blobs open at the death for the next worker",
                 leases.size());
  }
  const std::vector<JournaledRead> in_flight = journal->Snapshot();
  for (const JournaledRead& r : in_flight)
    spdlog::warn("READ in flight at the death: {}", r.Describe());
  tracker->set_limits(config.read_crash_limit, std::chrono::seconds(config.read_crash_window_s));
  for (const JournaledRead& r : tracker->WorkerDied(in_flight, Clock::now())) {
    spdlog::error(
        "{} was in flight at {} worker deaths within {} s: the next workers fail READs over it "
        "(EIO) and serve the rest",
        r.Describe(), config.read_crash_limit, config.read_crash_window_s);
  }
  journal->Clear();
  *in_flight_out = in_flight;
  return leases;
}

std::string DescribeExit(int status) {
  if (WIFEXITED(status)) return "exit code " + std::to_string(WEXITSTATUS(status));
  if (WIFSIGNALED(status)) return "signal " + std::to_string(WTERMSIG(status));
  return "status " + std::to_string(status);
}

}  // namespace

Result<AcquiredDevice> AcquireDevice(const DaemonConfig& config) {
  AcquiredDevice out;
  if (UnderSystemd()) {
    LB_ASSIGN_OR_RETURN(std::optional<UniqueFd> stored, TakeFdFromSystemd());
    if (stored.has_value()) {
      spdlog::info("took the device fd back from systemd's fd store");
      out.fd = std::move(*stored);
      out.from_fd_store = true;
      return out;
    }
  }
  LB_ASSIGN_OR_RETURN(out.fd, OpenDevice(config));
  if (UnderSystemd()) {
    Status s = StoreFdInSystemd(out.fd.get());
    if (!s.ok()) spdlog::warn("fd store: {} (a service restart will lose the cache)", s.ToString());
  }
  return out;
}

int RunWithoutSupervisor(const DaemonConfig& config) {
  auto device = AcquireFrontend(config);
  if (!device.ok()) {
    spdlog::error("device: {}", device.status().ToString());
    return kExitDeviceFailed;
  }
  WorkerLaunch launch;
  launch.device_fd = std::move(device->fd);
  launch.restore = device->from_fd_store;
  launch.fanotify = device->fanotify;
  launch.journal = device->journal.get();
  launch.on_ready = [] {
    if (UnderSystemd()) sd_notify(0, "READY=1");
  };
  launch.stop_alarm_s = config.stop_timeout_s;
  return RunWorker(config, std::move(launch));
}

int RunSupervisor(const DaemonConfig& start_config) {
  // The supervisor owns the config: a SIGHUP reload lands here too, so a worker started
  // after a crash gets the reloaded settings, not the ones the daemon started with.
  DaemonConfig config = start_config;
  auto device = AcquireFrontend(config);
  if (!device.ok()) {
    spdlog::error("device: {}", device.status().ToString());
    return kExitDeviceFailed;
  }
  sigset_t set;
  sigemptyset(&set);
  for (int s : {SIGTERM, SIGINT, SIGHUP, SIGCHLD}) sigaddset(&set, s);
  sigprocmask(SIG_BLOCK, &set, nullptr);
  UniqueFd sigfd(::signalfd(-1, &set, SFD_CLOEXEC));
  if (!sigfd) {
    spdlog::error("{}", Status::FromErrno(errno, "signalfd").ToString());
    return kExitFailure;
  }

  bool restore = device->from_fd_store, stopping = false, notified = false;
  // fanotify: what workers must not lose when they die (tools/lazyblobd_keeper.h).
  FdKeeper keeper;
  // cachefiles: the READs each worker has in flight, shared with it (read after its death).
  std::unique_ptr<ReadJournal> journal;
  if (!device->fanotify) {
    auto j = ReadJournal::Create(kReadJournalSlots);
    if (!j.ok()) {
      spdlog::error("{}", j.status().ToString());
      return kExitFailure;
    }
    journal = std::move(*j);
  }
  CrashTracker crash_tracker(config.read_crash_limit,
                             std::chrono::seconds(config.read_crash_window_s));
  // Leases of the blobs the last worker had open, for the next one (AccountForDeath).
  std::vector<BlobLease> kept_leases;
  std::vector<JournaledRead> last_in_flight;  // what the last worker left unanswered
  int restarts = 0;
  auto backoff = std::chrono::milliseconds(100);
  for (;;) {
    int ready_pipe[2];
    if (::pipe2(ready_pipe, O_CLOEXEC) != 0) return kExitFailure;
    UniqueFd ready_r(ready_pipe[0]), ready_w(ready_pipe[1]);
    auto child_fd = DupFd(device->fd.get());
    if (!child_fd.ok()) return kExitFailure;
    UniqueFd keeper_sup, keeper_wrk;
    if (device->fanotify) {
      int sp[2];
      if (::socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sp) != 0) return kExitFailure;
      keeper_sup = UniqueFd(sp[0]);
      keeper_wrk = UniqueFd(sp[1]);
    }
    const Clock::time_point started = Clock::now();
    const pid_t pid = ::fork();
    if (pid < 0) {
      spdlog::error("{}", Status::FromErrno(errno, "fork").ToString());
      return kExitFailure;
    }
    if (pid == 0) {  // worker
      sigset_t child_set = set;
      sigdelset(&child_set, SIGCHLD);
      sigprocmask(SIG_SETMASK, &child_set, nullptr);
      sigfd.reset();
      ready_r.reset();
      device->fd.reset();  // the worker holds its own dup; the supervisor keeps the original
      keeper_sup.reset();
      keeper = FdKeeper();  // the worker gets its own copies over the socket
      WorkerLaunch launch;
      launch.device_fd = std::move(*child_fd);
      launch.restore = restore;
      launch.fanotify = device->fanotify;
      launch.keeper_fd = std::move(keeper_wrk);
      launch.journal = device->journal.get();
      launch.restart_count = restarts;
      launch.read_journal = journal.get();
      launch.poisoned_reads = crash_tracker.poisoned();
      launch.inherited_leases = std::move(kept_leases);
      launch.unanswered_reads = last_in_flight;
      const int w = ready_w.release();
      launch.on_ready = [w] {
        const char one = 1;
        (void)!::write(w, &one, 1);
        ::close(w);
      };
      std::_Exit(RunWorker(config, std::move(launch)));
    }
    child_fd->reset();
    // The worker's copies of the lease fds hold the locks now (one open file description).
    kept_leases.clear();
    ready_w.reset();
    keeper_wrk.reset();
    spdlog::info("worker pid {} started{}", pid, restore ? " (restore)" : "");
    if (keeper_sup) {
      Status sent = keeper.SendAll(keeper_sup.get());
      if (!sent.ok()) spdlog::warn("fd keeper: {}", sent.ToString());
      if (keeper.size() > 0) spdlog::info("handed {} kept entries to the worker", keeper.size());
    }

    int status = 0;
    bool exited = false, killed = false;
    Clock::time_point kill_at{};
    while (!exited) {
      pollfd fds[3] = {{sigfd.get(), POLLIN, 0},
                       {ready_r ? ready_r.get() : -1, POLLIN, 0},
                       {keeper_sup ? keeper_sup.get() : -1, POLLIN, 0}};
      int timeout_ms = -1;
      if (stopping && !killed) {
        timeout_ms = static_cast<int>(std::max<std::int64_t>(
            0,
            std::chrono::duration_cast<std::chrono::milliseconds>(kill_at - Clock::now()).count()));
      }
      const int n = ::poll(fds, 3, timeout_ms);
      if (n < 0 && errno != EINTR) return kExitFailure;
      if (n == 0 && stopping && !killed) {
        // A worker that does not finish (a hung device, a stuck store read) must not
        // keep the service from stopping: systemd would wait TimeoutStopSec for nothing.
        spdlog::error("worker {} did not stop within {} s; killing it (SIGKILL)", pid,
                      config.stop_timeout_s);
        ::kill(pid, SIGKILL);
        killed = true;
        continue;
      }
      if (keeper_sup && fds[2].revents != 0) {
        auto open = keeper.Drain(keeper_sup.get());
        if (!open.ok() || !*open) {
          if (!open.ok()) spdlog::warn("fd keeper: {}", open.status().ToString());
          keeper_sup.reset();  // the worker closed its end (it is exiting)
        }
      }
      if (ready_r && fds[1].revents != 0) {
        char c;
        if (::read(ready_r.get(), &c, 1) == 1 && !notified) {
          notified = true;
          if (UnderSystemd()) sd_notify(0, "READY=1");
        }
        ready_r.reset();
      }
      if ((fds[0].revents & POLLIN) == 0) continue;
      signalfd_siginfo si;
      if (::read(sigfd.get(), &si, sizeof si) != sizeof si) continue;
      if (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT) {
        if (!stopping) {
          spdlog::info("signal {}: stopping worker {} (SIGKILL after {} s)", si.ssi_signo, pid,
                       config.stop_timeout_s);
          kill_at = Clock::now() + std::chrono::seconds(config.stop_timeout_s);
        }
        stopping = true;
        if (UnderSystemd()) sd_notify(0, "STOPPING=1");
        ::kill(pid, SIGTERM);
      } else if (si.ssi_signo == SIGHUP) {
        // Checked here as the worker checks it; either both take it or neither does.
        if (Status s = ReloadConfig(&config, GivenAsFlags()); s.ok()) {
          ApplyLogLevel(config.log_level);
        }
        ::kill(pid, SIGHUP);
      } else if (si.ssi_signo == SIGCHLD) {
        exited = ::waitpid(pid, &status, WNOHANG) == pid;
      }
    }
    if (keeper_sup) {
      // Whatever the worker sent before it died is applied before the next one starts.
      Status drained = keeper.DrainToEnd(keeper_sup.get());
      if (!drained.ok()) spdlog::warn("fd keeper: {}", drained.ToString());
    }
    if (stopping) {
      spdlog::info("worker {} ended ({}); supervisor exits", pid, DescribeExit(status));
      return WIFEXITED(status) && !killed ? WEXITSTATUS(status) : kExitFailure;
    }
    if (WIFEXITED(status) &&
        (WEXITSTATUS(status) == kExitUsage || WEXITSTATUS(status) == kExitDeviceFailed)) {
      spdlog::error("worker {} ended ({}); not restarting", pid, DescribeExit(status));
      return WEXITSTATUS(status);
    }
    if (!notified) {
      // Nothing was ever served: a missing store, a bad cache dir or a port in use will
      // not heal by retrying. Fail the start so the operator (or systemd) sees it at once.
      spdlog::error(
          "worker {} failed before it was ready ({}); not restarting: see the error above", pid,
          DescribeExit(status));
      return WIFEXITED(status) && WEXITSTATUS(status) != 0 ? WEXITSTATUS(status) : kExitFailure;
    }
    kept_leases = AccountForDeath(journal.get(), &crash_tracker, config, &last_in_flight);
    if (Clock::now() - started > std::chrono::seconds(10)) backoff = std::chrono::milliseconds(100);
    spdlog::warn("worker {} died ({}); restarting in {} ms", pid, DescribeExit(status),
                 backoff.count());
    // Wait out the backoff, still answering SIGTERM.
    pollfd p{sigfd.get(), POLLIN, 0};
    if (::poll(&p, 1, static_cast<int>(backoff.count())) > 0) {
      signalfd_siginfo si;
      if (::read(sigfd.get(), &si, sizeof si) == sizeof si &&
          (si.ssi_signo == SIGTERM || si.ssi_signo == SIGINT)) {
        return kExitOk;
      }
    }
    backoff = std::min<std::chrono::milliseconds>(backoff * 2, std::chrono::seconds(5));
    restore = true;
    ++restarts;
  }
}

}  // namespace lazyblob
