// A scripted PreContentSource for PreContentEngine tests: events are pushed by the test
// (the accessed file named by its path), answers are recorded per event, and every allow is
// checked against the file: an allowed range that still has a hole is a violation (what a
// reader would see as zeros). Orphans and the "unrecorded" flag are scripted too.
//
// Thread-safety: like the interface (Read from one thread, the rest from any).
#ifndef LAZYBLOB_TESTS_CORE_PRE_CONTENT_TEST_DOUBLES_H_
#define LAZYBLOB_TESTS_CORE_PRE_CONTENT_TEST_DOUBLES_H_

#include <fcntl.h>
#include <sys/eventfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "core/pre_content_source.h"

namespace lazyblob::testing {

class ScriptedSource final : public PreContentSource {
 public:
  static constexpr std::chrono::seconds kGuard{60};  // against a hung test, never a timing

  ScriptedSource() : event_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {}

  // Queues an event on the file at `path`; returns its id (AccessEvent::record).
  std::uint32_t Push(const std::string& path, std::uint64_t offset, std::uint64_t count) {
    AccessEvent e = Make(path, offset, count);
    e.fd = UniqueFd(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
    e.fd_number = e.fd.get();
    std::lock_guard lock(mu_);
    e.record = next_id_++;
    const std::uint32_t id = e.record;
    queue_.push_back(std::move(e));
    const std::uint64_t one = 1;
    (void)!::write(event_.get(), &one, sizeof one);
    return id;
  }
  // An orphan (no fd) for TakeOrphans; returns its id.
  std::uint32_t AddOrphan(const std::string& path, std::uint64_t offset, std::uint64_t count) {
    AccessEvent e = Make(path, offset, count);
    e.fd_number = 1000 + static_cast<int>(orphans_.events.size());
    std::lock_guard lock(mu_);
    e.record = next_id_++;
    const std::uint32_t id = e.record;
    orphans_.events.push_back(std::move(e));
    return id;
  }
  void SetUnrecordedPossible() { orphans_.unrecorded_possible = true; }
  void PushMalformed() {
    std::lock_guard lock(mu_);
    ++malformed_;
    const std::uint64_t one = 1;
    (void)!::write(event_.get(), &one, sizeof one);
  }

  int poll_fd() const override { return event_.get(); }

  Result<AccessOrphans> TakeOrphans() override {
    std::lock_guard lock(mu_);
    if (reads_ > 0) ++violations_;  // orphans must come first
    ++orphan_takes_;
    return std::move(orphans_);
  }

  Result<AccessBatch> Read(std::size_t max_events) override {
    std::lock_guard lock(mu_);
    ++reads_;
    max_batch_seen_ = std::max(max_batch_seen_, max_events);
    AccessBatch batch;
    batch.rejected = std::exchange(malformed_, 0);
    if (batch.rejected > 0) batch.first_rejection = Malformed("scripted");
    while (!queue_.empty() && batch.events.size() < max_events) {
      batch.events.push_back(std::move(queue_.front()));
      queue_.pop_front();
    }
    if (queue_.empty()) {
      std::uint64_t v;
      (void)!::read(event_.get(), &v, sizeof v);
    }
    return batch;
  }

  Status Answer(const AccessEvent& e, int error) override {
    std::lock_guard lock(mu_);
    if (!answers_.emplace(e.record, error).second) ++double_answers_;
    if (error == 0 && !Filled(e)) ++allowed_unfilled_;
    cv_.notify_all();
    return Status();
  }
  Status AnswerUnrecorded(int error) override {
    std::lock_guard lock(mu_);
    if (reads_ > 0) ++violations_;
    unrecorded_answers_.push_back(error);
    return Status();
  }
  Status Mark(int fd) override {
    std::lock_guard lock(mu_);
    marked_.insert(Ino(fd));
    return Status();
  }
  Status Unmark(int fd) override {
    std::lock_guard lock(mu_);
    return marked_.erase(Ino(fd)) == 1 ? Status() : NotFound("not marked");
  }

  // Waits for the answer of event `id`: 0 allow, else the deny errno; -1 on timeout.
  int WaitAnswer(std::uint32_t id) {
    std::unique_lock lock(mu_);
    if (!cv_.wait_for(lock, kGuard, [&] { return answers_.count(id) != 0; })) return -1;
    return answers_.at(id);
  }
  std::size_t answered() {
    std::lock_guard lock(mu_);
    return answers_.size();
  }
  bool WaitAnswered(std::size_t n) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, kGuard, [&] { return answers_.size() >= n; });
  }
  bool marked(const std::string& path) {
    struct stat st {};
    ::stat(path.c_str(), &st);
    std::lock_guard lock(mu_);
    return marked_.count(st.st_ino) != 0;
  }
  int double_answers() {
    std::lock_guard lock(mu_);
    return double_answers_;
  }
  int allowed_unfilled() {
    std::lock_guard lock(mu_);
    return allowed_unfilled_;
  }
  int violations() {
    std::lock_guard lock(mu_);
    return violations_;
  }
  std::vector<int> unrecorded_answers() {
    std::lock_guard lock(mu_);
    return unrecorded_answers_;
  }
  std::size_t max_batch_seen() {
    std::lock_guard lock(mu_);
    return max_batch_seen_;
  }
  std::size_t queued() {
    std::lock_guard lock(mu_);
    return queue_.size();
  }

 private:
  AccessEvent Make(const std::string& path, std::uint64_t offset, std::uint64_t count) {
    struct stat st {};
    ::stat(path.c_str(), &st);
    AccessEvent e;
    e.dev = st.st_dev;
    e.ino = st.st_ino;
    e.offset = offset;
    e.count = count;
    std::lock_guard lock(mu_);
    paths_[st.st_ino] = path;
    return e;
  }
  static std::uint64_t Ino(int fd) {
    struct stat st {};
    ::fstat(fd, &st);
    return st.st_ino;
  }
  // The event's range, clipped to the file, holds data (no hole).
  bool Filled(const AccessEvent& e) {
    auto it = paths_.find(e.ino);
    if (it == paths_.end()) return false;
    UniqueFd fd(::open(it->second.c_str(), O_RDONLY | O_CLOEXEC));
    struct stat st {};
    ::fstat(fd.get(), &st);
    const std::uint64_t size = static_cast<std::uint64_t>(st.st_size);
    const std::uint64_t end = std::min(e.offset + e.count, size);
    if (e.offset >= end) return true;
    const off_t hole = ::lseek(fd.get(), static_cast<off_t>(e.offset), SEEK_HOLE);
    return hole >= 0 && static_cast<std::uint64_t>(hole) >= end;
  }

  UniqueFd event_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<AccessEvent> queue_;
  AccessOrphans orphans_;
  std::map<std::uint64_t, std::string> paths_;
  std::map<std::uint32_t, int> answers_;
  std::set<std::uint64_t> marked_;
  std::vector<int> unrecorded_answers_;
  std::uint32_t next_id_ = 1;
  std::size_t malformed_ = 0;
  std::size_t max_batch_seen_ = 0;
  int reads_ = 0;
  int orphan_takes_ = 0;
  int double_answers_ = 0;
  int allowed_unfilled_ = 0;
  int violations_ = 0;
};

}  // namespace lazyblob::testing

#endif  // LAZYBLOB_TESTS_CORE_PRE_CONTENT_TEST_DOUBLES_H_
