#include "transport/fanotify_event_decoder.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <vector>

namespace lazyblob {
namespace {

// Fds in these byte strings are made up: each adopted one becomes a fresh /dev/null fd,
// remembered so the test can check it was closed.
std::vector<int> g_adopted;
UniqueFd AdoptFresh(std::int32_t) {
  UniqueFd fd(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  g_adopted.push_back(fd.get());
  return fd;
}
bool IsClosed(int fd) { return ::fcntl(fd, F_GETFD) < 0 && errno == EBADF; }

template <typename T>
void Put(std::vector<std::byte>& b, std::size_t at, T v) {
  std::memcpy(b.data() + at, &v, sizeof v);
}

// One event: metadata, then a range record when `range`, then `extra` raw record bytes.
std::vector<std::byte> Event(std::uint64_t mask, std::int32_t fd, bool range, std::uint64_t off = 0,
                             std::uint64_t count = 0, std::vector<std::byte> extra = {}) {
  std::vector<std::byte> b(24 + (range ? 24 : 0));
  Put<std::uint32_t>(b, 0, static_cast<std::uint32_t>(b.size() + extra.size()));
  Put<std::uint8_t>(b, 4, 3);
  Put<std::uint16_t>(b, 6, 24);
  Put<std::uint64_t>(b, 8, mask);
  Put<std::int32_t>(b, 16, fd);
  Put<std::int32_t>(b, 20, 4242);
  if (range) {
    Put<std::uint8_t>(b, 24, 6);
    Put<std::uint16_t>(b, 26, 24);
    Put<std::uint64_t>(b, 32, off);
    Put<std::uint64_t>(b, 40, count);
  }
  b.insert(b.end(), extra.begin(), extra.end());
  return b;
}

std::vector<std::byte> Cat(std::vector<std::byte> a, const std::vector<std::byte>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

class FanotifyEventDecoderTest : public ::testing::Test {
 protected:
  void SetUp() override { g_adopted.clear(); }
};

TEST_F(FanotifyEventDecoderTest, DecodesPreAccessEventsBackToBackAndOwnsTheirFds) {
  auto bytes = Cat(Event(kFanotifyPreAccess, 7, true, 8192, 65536),
                   Event(kFanotifyPreAccess, 8, true, 0, 4096));
  auto r = FanotifyEventDecoder::Decode(bytes, &AdoptFresh);
  ASSERT_EQ(r.events.size(), 2u);
  EXPECT_TRUE(r.rejected.empty());
  EXPECT_FALSE(r.framing_broken);
  EXPECT_EQ(r.events[0].range, (FanotifyRange{8192, 65536}));
  EXPECT_EQ(r.events[0].pid, 4242);
  EXPECT_TRUE(r.events[0].needs_answer());
  EXPECT_EQ(r.events[1].range, (FanotifyRange{0, 4096}));
  ASSERT_EQ(g_adopted.size(), 2u);
  EXPECT_EQ(r.events[0].fd.get(), g_adopted[0]);
  r = {};
  EXPECT_TRUE(IsClosed(g_adopted[0]));
  EXPECT_TRUE(IsClosed(g_adopted[1]));
}

TEST_F(FanotifyEventDecoderTest, PreAccessWithoutARangeIsRejectedButStillNeedsAnAnswer) {
  auto r = FanotifyEventDecoder::Decode(Event(kFanotifyPreAccess, 5, false), &AdoptFresh);
  EXPECT_TRUE(r.events.empty());
  ASSERT_EQ(r.rejected.size(), 1u);
  EXPECT_TRUE(r.rejected[0].needs_answer);
  EXPECT_TRUE(r.rejected[0].fd.valid());
  EXPECT_EQ(r.rejected[0].why.code(), StatusCode::kMalformed);
  int fd = r.rejected[0].fd.get();
  r = {};
  EXPECT_TRUE(IsClosed(fd));
}

TEST_F(FanotifyEventDecoderTest, BadFramingStopsAndLaterBytesAreNotTrusted) {
  auto bad = Event(kFanotifyPreAccess, 5, true, 0, 4096);
  Put<std::uint32_t>(bad, 0, 1000);  // longer than the buffer
  auto r =
      FanotifyEventDecoder::Decode(Cat(Event(kFanotifyPreAccess, 4, true, 0, 1), bad), &AdoptFresh);
  EXPECT_EQ(r.events.size(), 1u);
  EXPECT_TRUE(r.framing_broken);
  ASSERT_EQ(r.rejected.size(), 1u);
  EXPECT_FALSE(r.rejected[0].fd.valid());
  EXPECT_EQ(g_adopted.size(), 1u);  // the unframed event's fd was never taken

  std::vector<std::byte> tail(10);
  r = FanotifyEventDecoder::Decode(tail, &AdoptFresh);
  EXPECT_TRUE(r.framing_broken);
  EXPECT_EQ(r.rejected.size(), 1u);
}

TEST_F(FanotifyEventDecoderTest, RejectsBadVersionRangeLengthPaddingAndOverflow) {
  auto v = Event(kFanotifyPreAccess, 1, true, 0, 1);
  Put<std::uint8_t>(v, 4, 2);
  auto len = Event(kFanotifyPreAccess, 1, true, 0, 1);
  Put<std::uint16_t>(len, 26, 20);
  auto pad = Event(kFanotifyPreAccess, 1, true, 0, 1);
  Put<std::uint32_t>(pad, 28, 1);
  auto big = Event(kFanotifyPreAccess, 1, true, ~0ull - 10, 100);
  auto stray = Event(0x1 /* FAN_ACCESS */, 1, true, 0, 1);
  auto nofd = Event(kFanotifyPreAccess, -1, true, 0, 1);
  for (const auto& b : {v, len, pad, big, stray, nofd}) {
    auto r = FanotifyEventDecoder::Decode(b, &AdoptFresh);
    EXPECT_TRUE(r.events.empty());
    EXPECT_EQ(r.rejected.size(), 1u);
  }
}

TEST_F(FanotifyEventDecoderTest, SkipsWellFormedUnknownRecordsAndDecodesOverflow) {
  std::vector<std::byte> unknown(12);
  Put<std::uint8_t>(unknown, 0, 99);
  Put<std::uint16_t>(unknown, 2, 12);
  auto r = FanotifyEventDecoder::Decode(Event(kFanotifyPreAccess, 3, true, 4096, 4096, unknown),
                                        &AdoptFresh);
  ASSERT_EQ(r.events.size(), 1u);
  EXPECT_EQ(r.events[0].range, (FanotifyRange{4096, 4096}));

  r = FanotifyEventDecoder::Decode(Event(kFanotifyQueueOverflow, -1, false), &AdoptFresh);
  ASSERT_EQ(r.events.size(), 1u);
  EXPECT_FALSE(r.events[0].fd.valid());
  EXPECT_FALSE(r.events[0].needs_answer());
}

}  // namespace
}  // namespace lazyblob
