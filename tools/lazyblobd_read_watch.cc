#include "tools/lazyblobd_read_watch.h"

#include <signal.h>
#include <unistd.h>

#include <spdlog/spdlog.h>

#include <algorithm>
#include <charconv>
#include <cstring>

namespace lazyblob {

Result<Failpoint> ParseFailpoint(const char* spec) {
  Failpoint fp;
  if (spec == nullptr || *spec == '\0') return fp;
  // NAME[:BLOB]:OFFSET or NAME: the offset after the last ':', the blob between.
  std::string_view s(spec), name = s, arg;
  if (const auto colon = s.find(':'); colon != std::string_view::npos) {
    name = s.substr(0, colon);
    arg = s.substr(colon + 1);
    if (const auto last = arg.rfind(':'); last != std::string_view::npos) {
      fp.blob_id = std::string(arg.substr(0, last));
      arg = arg.substr(last + 1);
    }
  }
  if (name == "crash_on_read") {
    fp.kind = Failpoint::Kind::kCrashOnRead;
  } else if (name == "hold_read") {
    fp.kind = Failpoint::Kind::kHoldRead;
  } else {
    return InvalidArgument(std::string(kFailpointEnv) + ": unknown failpoint '" +
                           std::string(name) +
                           "' (crash_on_read:[BLOB:]OFFSET or hold_read[:[BLOB:]OFFSET])");
  }
  if (!arg.empty()) {
    std::uint64_t v = 0;
    const auto [p, ec] = std::from_chars(arg.data(), arg.data() + arg.size(), v);
    if (ec != std::errc() || p != arg.data() + arg.size()) {
      return InvalidArgument(std::string(kFailpointEnv) + ": bad offset '" + std::string(arg) +
                             "'");
    }
    fp.offset = v;
  } else if (fp.kind == Failpoint::Kind::kCrashOnRead) {
    return InvalidArgument(std::string(kFailpointEnv) + ": crash_on_read needs :OFFSET");
  }
  return fp;
}

ReadWatch::ReadWatch(ReadJournal* journal, std::vector<JournaledRead> poisoned, Failpoint failpoint,
                     bool first_worker, std::vector<BlobLease> inherited_leases)
    : journal_(journal),
      poisoned_(std::move(poisoned)),
      failpoint_(failpoint),
      first_worker_(first_worker) {
  MutexLock lock(&mu_);
  for (BlobLease& lease : inherited_leases) {
    const std::string id = lease.blob_id();
    if (!inherited_.emplace(id, std::move(lease)).second) continue;
    // Still open as far as the kernel knows: kept across a further death too.
    if (journal_ != nullptr) journal_->BlobOpened(id);
  }
}

void ReadWatch::ObjectOpened(std::string_view blob_id) {
  if (journal_ != nullptr) journal_->BlobOpened(blob_id);
  MutexLock lock(&mu_);
  if (auto it = inherited_.find(blob_id); it != inherited_.end()) {
    inherited_.erase(it);  // the engine's hold leases the blob now
    if (journal_ != nullptr) journal_->BlobClosed(blob_id);
  }
}

void ReadWatch::ObjectClosed(std::string_view blob_id) {
  if (journal_ != nullptr) journal_->BlobClosed(blob_id);
}

void ReadWatch::ExpectRedelivered(std::vector<JournaledRead> reads) {
  MutexLock lock(&mu_);
  expected_ = std::move(reads);
}

std::uint64_t ReadWatch::redelivered() const {
  MutexLock lock(&mu_);
  return redelivered_;
}

std::size_t ReadWatch::inherited_leases() const {
  MutexLock lock(&mu_);
  return inherited_.size();
}

bool ReadWatch::BeginRead(std::uint32_t msg_id, std::string_view blob_id, std::uint64_t offset,
                          std::uint64_t length) {
  for (const JournaledRead& p : poisoned_) {
    if (p.Overlaps(blob_id, offset, length)) {
      spdlog::error(
          "READ {} of blob '{}' [{}, +{}) overlaps {}, which was in flight at every "
          "one of the last worker crashes: failed without serving it (EIO)",
          msg_id, blob_id, offset, length, p.Describe());
      return false;
    }
  }
  if (journal_ != nullptr) journal_->Begin(msg_id, blob_id, offset, length);
  {
    MutexLock lock(&mu_);
    const JournaledRead r{std::string(blob_id), offset, length};
    if (auto it = std::find(expected_.begin(), expected_.end(), r); it != expected_.end()) {
      expected_.erase(it);
      ++redelivered_;
      spdlog::info("READ {} of {} re-delivered after the previous worker died", msg_id,
                   r.Describe());
    }
  }
  if (failpoint_.kind == Failpoint::Kind::kNone) return true;
  const bool covers = (failpoint_.blob_id.empty() || failpoint_.blob_id == blob_id) &&
                      (!failpoint_.offset.has_value() ||
                       (*failpoint_.offset >= offset && *failpoint_.offset - offset < length));
  if (!covers) return true;
  if (failpoint_.kind == Failpoint::Kind::kCrashOnRead) {
    spdlog::warn("failpoint crash_on_read: READ {} of blob '{}' [{}, +{}): killing the worker",
                 msg_id, blob_id, offset, length);
    spdlog::default_logger()->flush();
    ::kill(::getpid(), SIGKILL);
  } else if (failpoint_.kind == Failpoint::Kind::kHoldRead && first_worker_) {
    spdlog::warn("failpoint hold_read: holding READ {} of blob '{}' [{}, +{}) until killed", msg_id,
                 blob_id, offset, length);
    spdlog::default_logger()->flush();
    for (;;) ::pause();
  }
  return true;
}

void ReadWatch::EndRead(std::uint32_t msg_id) {
  if (journal_ != nullptr) journal_->End(msg_id);
}

}  // namespace lazyblob
