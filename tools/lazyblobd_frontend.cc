#include "tools/lazyblobd_frontend.h"

#include <fcntl.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <cerrno>
#include <filesystem>

#include "tools/lazyblobd_supervisor.h"
#include "transport/fanotify_group.h"

namespace lazyblob {
namespace {

Result<AcquiredFrontend> AcquireCachefiles(const DaemonConfig& config) {
  LB_ASSIGN_OR_RETURN(AcquiredDevice device, AcquireDevice(config));
  AcquiredFrontend out;
  out.fd = std::move(device.fd);
  out.from_fd_store = device.from_fd_store;
  return out;
}

Result<AcquiredFrontend> AcquireFanotify(const DaemonConfig& config) {
  std::error_code ec;
  std::filesystem::create_directories(config.cache_dir + "/fanotify", ec);
  Status probe = FanotifyGroup::ProbeSupport(config.cache_dir + "/fanotify");
  if (!probe.ok()) return probe.WithContext("fanotify front end, cache dir " + config.cache_dir);
  LB_ASSIGN_OR_RETURN(auto group, FanotifyGroup::Open());
  AcquiredFrontend out;
  out.fanotify = true;
  out.fd = UniqueFd(::fcntl(group->fd(), F_DUPFD_CLOEXEC, 3));
  if (!out.fd) return Status::FromErrno(errno, "dup the fanotify group fd");
  LB_ASSIGN_OR_RETURN(out.journal, AccessJournal::Create());
  return out;
}

}  // namespace

Result<AcquiredFrontend> AcquireFrontend(const DaemonConfig& config) {
  if (!config.sim_socket.empty() || config.frontend == "cachefiles") {
    spdlog::info("front end: cachefiles ({})", config.sim_socket.empty()
                                                   ? "--frontend cachefiles"
                                                   : "the kernel simulator, --sim-socket");
    return AcquireCachefiles(config);
  }
  if (config.frontend == "fanotify") {
    spdlog::info("front end: fanotify (--frontend fanotify)");
    return AcquireFanotify(config);
  }
  std::string why;
  if (::access(config.device_path.c_str(), F_OK) != 0) {
    why = config.device_path + " does not exist";
  } else {
    Result<AcquiredFrontend> cachefiles = AcquireCachefiles(config);
    if (cachefiles.ok()) {
      spdlog::info("front end: cachefiles (auto: {} binds in on-demand mode)", config.device_path);
      return cachefiles;
    }
    why = cachefiles.status().ToString();
  }
  spdlog::info("front end: fanotify (auto: no cachefiles on-demand mode: {})", why);
  return AcquireFanotify(config);
}

}  // namespace lazyblob
