// The mount verbs: `lazyblob mount ID DIR [--device ID]...` and `lazyblob umount DIR`, for
// lazyblobd's fanotify front end. The daemon prepares the blobs' sparse cache files over the
// control socket (tools/lazyblob_control_protocol.h); this process does the EROFS
// file-backed mount(2) itself (never util-linux mount, which would set up a loop device, and
// a loop device over a marked file reads zeros) and reports the result back.
#include <fcntl.h>
#include <signal.h>
#include <sys/mount.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <thread>

#include "tools/lazyblob_commands.h"
#include "tools/lazyblob_control_protocol.h"
#include "tools/lazyblob_output.h"

namespace lazyblob::cli {
namespace {

// A prepare may fill the image's metadata from the store first.
constexpr int kPrepareTimeoutMs = 600'000;
constexpr int kReplyTimeoutMs = 60'000;
// How long a report keeps being retried while the daemon's worker restarts.
constexpr auto kReportRetry = std::chrono::seconds(60);

// Sends `request` (on `conn`, reconnecting when the daemon's worker restarted meanwhile)
// until a reply comes; the reply's status.
Status Report(UniqueFd& conn, const std::string& socket, const ControlMessage& request,
              int pass_fd) {
  const auto deadline = std::chrono::steady_clock::now() + kReportRetry;
  Status last;
  for (;;) {
    if (conn.valid()) {
      Result<ControlMessage> reply = CallControl(conn.get(), request, kReplyTimeoutMs, pass_fd);
      if (reply.ok()) return ReplyStatus(*reply);
      last = reply.status();
      conn.reset();
    }
    if (std::chrono::steady_clock::now() > deadline) {
      return last.WithContext("reporting to lazyblobd at " + socket);
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    Result<UniqueFd> again = ConnectControl(socket);
    if (again.ok()) conn = std::move(*again);
  }
}

// Blocks the signals a user sends while mount(2) and its report run, so that an interrupt
// never leaves a mount the daemon was not told about.
class SignalsHeld {
 public:
  SignalsHeld() {
    sigset_t set;
    sigemptyset(&set);
    for (int s : {SIGINT, SIGTERM, SIGHUP, SIGQUIT}) sigaddset(&set, s);
    ::sigprocmask(SIG_BLOCK, &set, &old_);
  }
  ~SignalsHeld() { ::sigprocmask(SIG_SETMASK, &old_, nullptr); }

 private:
  sigset_t old_;
};

Result<std::string> MountDir(const std::string& dir) {
  std::error_code ec;
  const std::filesystem::path abs = std::filesystem::absolute(dir, ec);
  if (ec || !std::filesystem::is_directory(abs, ec)) {
    return InvalidArgument("mount point " + dir + " is not a directory");
  }
  return abs.lexically_normal().string();
}

}  // namespace

ExitCode RunMount(const GlobalFlags& g, const MountFlags& f) {
  constexpr std::string_view kVerb = "mount";
  Result<std::string> dir = MountDir(f.dir);
  if (!dir.ok()) return Fail(g, kVerb, dir.status());
  Result<UniqueFd> conn = ConnectControl(f.control_socket);
  if (!conn.ok()) return Fail(g, kVerb, conn.status());
  ControlMessage prepare;
  prepare.verb = "prepare";
  prepare.Add("id", f.id).Add("dir", *dir);
  for (const std::string& d : f.devices) prepare.Add("device", d);
  Result<ControlMessage> ready = CallControl(conn->get(), prepare, kPrepareTimeoutMs);
  if (!ready.ok()) return Fail(g, kVerb, ready.status().WithContext("lazyblobd"));
  if (Status s = ReplyStatus(*ready); !s.ok()) return Fail(g, kVerb, s);
  const std::string token = ready->Get("token"), source = ready->Get("source");
  const std::vector<std::string> devices = ready->GetAll("device");
  std::string options;
  for (const std::string& d : devices) options += (options.empty() ? "" : ",") + ("device=" + d);

  SignalsHeld held;
  if (::mount(source.c_str(), dir->c_str(), "erofs", MS_RDONLY | MS_NODEV | MS_NOSUID,
              options.empty() ? nullptr : options.c_str()) != 0) {
    const Status failed =
        Status::FromErrno(errno, "mount(2) of " + source + " on " + *dir + " (erofs, file-backed)");
    ControlMessage abort;
    abort.verb = "abort";
    abort.Add("token", token);
    Report(*conn, f.control_socket, abort, -1).IgnoreError();
    return Fail(g, kVerb, failed);
  }
  Result<std::uint64_t> mnt_id = MountIdOf(*dir);
  UniqueFd ns(::open("/proc/self/ns/mnt", O_RDONLY | O_CLOEXEC));
  ControlMessage mounted;
  mounted.verb = "mounted";
  mounted.Add("token", token)
      .Add("dir", *dir)
      .Add("mnt_id", mnt_id.ok() ? std::to_string(*mnt_id) : "");
  Status reported =
      mnt_id.ok() ? Report(*conn, f.control_socket, mounted, ns.get()) : mnt_id.status();
  if (!reported.ok()) {
    // The daemon does not know this mount: it must not stay (its files may lose their marks).
    ::umount2(dir->c_str(), 0);
    return Fail(g, kVerb, reported.WithContext("the mount was undone"));
  }
  if (g.json) {
    nlohmann::json doc = {{"id", f.id},          {"device_ids", f.devices}, {"dir", *dir},
                          {"mount_id", *mnt_id}, {"source", source},        {"devices", devices}};
    PrintJson(doc);
  } else {
    std::printf("mounted blob '%s' on %s\n", f.id.c_str(), dir->c_str());
  }
  return kExitOk;
}

ExitCode RunUmount(const GlobalFlags& g, const UmountFlags& f) {
  constexpr std::string_view kVerb = "umount";
  Result<std::string> dir = MountDir(f.dir);
  if (!dir.ok()) return Fail(g, kVerb, dir.status());
  Result<std::uint64_t> mnt_id = MountIdOf(*dir);
  if (!mnt_id.ok()) return Fail(g, kVerb, mnt_id.status());
  Result<UniqueFd> conn = ConnectControl(f.control_socket);
  if (!conn.ok()) return Fail(g, kVerb, conn.status());
  ControlMessage ask;
  ask.verb = "umount";
  ask.Add("mnt_id", std::to_string(*mnt_id));
  Result<ControlMessage> known = CallControl(conn->get(), ask, kReplyTimeoutMs);
  if (!known.ok()) return Fail(g, kVerb, known.status().WithContext("lazyblobd"));
  if (Status s = ReplyStatus(*known); !s.ok()) {
    return Fail(
        g, kVerb,
        s.code() == StatusCode::kNotFound ? NotFound(*dir + " is not a lazyblob mount") : s);
  }
  SignalsHeld held;
  if (::umount2(dir->c_str(), UMOUNT_NOFOLLOW) != 0) {
    const int err = errno;
    return Fail(g, kVerb,
                Status(err == EBUSY ? StatusCode::kBusy : StatusCode::kIoError,
                       "umount " + *dir + ": " + std::strerror(err) +
                           (err == EBUSY ? " (files or directories in it are still in use)" : ""),
                       err));
  }
  ControlMessage done;
  done.verb = "unmounted";
  done.Add("mnt_id", std::to_string(*mnt_id));
  Status reported = Report(*conn, f.control_socket, done, -1);
  if (!reported.ok()) return Fail(g, kVerb, reported);
  if (g.json) {
    PrintJson(nlohmann::json{{"dir", *dir}, {"mount_id", *mnt_id}});
  } else {
    std::printf("unmounted %s\n", dir->c_str());
  }
  return kExitOk;
}

}  // namespace lazyblob::cli
