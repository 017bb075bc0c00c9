// Test-only: a trivial daemon loop on a CacheDevice. Answers OPEN with a fixed size and
// READ by writing PatternByte() into the anon fd (WriteBlocks, zero-padded last block).
// Knobs make it misbehave on purpose. Not the real daemon (that lives in core/tools).
//
// Thread-safety: Start/Stop from the test thread; the knobs are atomics; seen() locks.
#ifndef LAZYBLOB_TESTS_TRANSPORT_TEST_RESPONDER_H_
#define LAZYBLOB_TESTS_TRANSPORT_TEST_RESPONDER_H_

#include <poll.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <variant>
#include <vector>

#include "core/aligned_buffer.h"
#include "core/anon_fd_writer.h"
#include "core/cache_device.h"

namespace lazyblob::testing {

inline std::byte PatternByte(std::uint64_t off) {
  return static_cast<std::byte>((off * 131 + off / 4096 + 7) & 0xff);
}

// Writes the pattern for [0, size) to `path` (a "source image").
inline void WritePatternFile(const std::string& path, std::uint64_t size) {
  std::vector<std::byte> b(size);
  for (std::uint64_t i = 0; i < size; ++i) b[i] = PatternByte(i);
  FILE* f = std::fopen(path.c_str(), "wb");
  std::fwrite(b.data(), 1, b.size(), f);
  std::fclose(f);
}

struct SeenMessage {
  CacheOpcode op;
  std::uint32_t msg_id, object_id;
  std::uint64_t offset = 0, length = 0;
  std::string volume_key, cookie_key;
};

class TestResponder {
 public:
  explicit TestResponder(CacheDevice* device, std::uint64_t blob_size)
      : device_(device), blob_size_(blob_size) {}
  ~TestResponder() { Stop(); }

  std::atomic<bool> answer_reads{true};
  std::atomic<bool> leave_hole{false};                       // complete READs without writing data
  std::atomic<std::int64_t> open_reply_override{INT64_MIN};  // e.g. -ENOENT

  void Start() {
    stop_ = false;
    thread_ = std::thread([this] { Loop(); });
  }
  void Stop() {
    stop_ = true;
    if (thread_.joinable()) thread_.join();
  }
  std::vector<SeenMessage> seen() const {
    std::lock_guard lk(mu_);
    return seen_;
  }
  // Waits (bounded by `max_polls` 10 ms polls) until `pred(seen())` holds.
  template <typename Pred>
  bool WaitFor(Pred pred, int max_polls = 3000) const {
    for (int i = 0; i < max_polls; ++i) {
      if (pred(seen())) return true;
      ::usleep(10'000);
    }
    return false;
  }

 private:
  void Loop() {
    std::map<std::uint32_t, std::shared_ptr<UniqueFd>> fds;  // by object_id
    while (!stop_) {
      pollfd p{device_->poll_fd(), POLLIN, 0};
      if (::poll(&p, 1, 10) <= 0) continue;
      auto m = device_->Read();
      if (!m.ok() || !m->has_value()) {
        if (!m.ok() && m.status().code() != StatusCode::kMalformed) return;
        continue;
      }
      CacheMessage& msg = **m;
      if (auto* o = std::get_if<OpenMessage>(&msg)) {
        Record({CacheOpcode::kOpen, o->msg_id, o->object_id, 0, 0, o->volume_key, o->cookie_key});
        fds[o->object_id] = std::make_shared<UniqueFd>(std::move(o->anon_fd));
        std::int64_t r = open_reply_override.load();
        device_->ReplyOpen(o->msg_id, r == INT64_MIN ? blob_size_ : r).IgnoreError();
      } else if (auto* rd = std::get_if<ReadMessage>(&msg)) {
        Record({CacheOpcode::kRead, rd->msg_id, rd->object_id, rd->offset, rd->length, "", ""});
        if (!answer_reads) continue;
        auto it = fds.find(rd->object_id);
        if (it == fds.end()) continue;
        if (!leave_hole) WritePattern(it->second->get(), rd->offset, rd->length);
        device_->CompleteRead(it->second->get(), rd->msg_id).IgnoreError();
      } else {
        auto& c = std::get<CloseMessage>(msg);
        Record({CacheOpcode::kClose, c.msg_id, c.object_id, 0, 0, "", ""});
        fds.erase(c.object_id);
      }
    }
  }
  void WritePattern(int fd, std::uint64_t off, std::uint64_t len) {
    AlignedBuffer buf(len);
    std::memset(buf.data(), 0, buf.size());
    for (std::uint64_t i = 0; i < len && off + i < blob_size_; ++i) {
      buf.data()[i] = PatternByte(off + i);
    }
    WriteBlocks(fd, off, buf.span()).IgnoreError();
  }
  void Record(SeenMessage m) {
    std::lock_guard lk(mu_);
    seen_.push_back(std::move(m));
  }

  CacheDevice* device_;
  std::uint64_t blob_size_;
  std::atomic<bool> stop_{false};
  std::thread thread_;
  mutable std::mutex mu_;
  std::vector<SeenMessage> seen_;
};

}  // namespace lazyblob::testing

#endif  // LAZYBLOB_TESTS_TRANSPORT_TEST_RESPONDER_H_
