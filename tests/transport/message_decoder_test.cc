#include "transport/message_decoder.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <linux/cachefiles.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <random>

#include "transport/message_encoder.h"

namespace lazyblob {
namespace {

// A fresh fd (owned by the returned UniqueFd) and its number, to check it gets closed.
UniqueFd NewFd() { return UniqueFd(::open("/dev/null", O_RDONLY | O_CLOEXEC)); }
bool IsClosed(int fd) { return ::fcntl(fd, F_GETFD) < 0 && errno == EBADF; }

void SetU32(std::vector<std::byte>& b, std::size_t at, std::uint32_t v) {
  std::memcpy(b.data() + at, &v, sizeof v);
}

TEST(MessageDecoder, DecodesOpenWithKeysAndTakesTheFd) {
  auto bytes = MessageEncoder::Open(7, 1, "erofs,domain", "blob-1", 42);
  UniqueFd fd = NewFd();
  int raw = fd.get();
  auto r = MessageDecoder::Decode(bytes, std::move(fd));
  ASSERT_TRUE(r.ok()) << r.status().ToString();
  auto& o = std::get<OpenMessage>(*r);
  EXPECT_EQ(o.msg_id, 7u);
  EXPECT_EQ(o.object_id, 1u);
  EXPECT_EQ(o.volume_key, "erofs,domain");
  EXPECT_EQ(o.cookie_key, "blob-1");
  EXPECT_EQ(o.anon_fd.get(), raw);
  EXPECT_FALSE(IsClosed(raw));
}

TEST(MessageDecoder, EncoderMatchesKernelLayout) {
  auto b = MessageEncoder::Open(3, 9, "erofs,x", "id", 5, 0);
  ASSERT_EQ(b.size(), 16u + 16u + 8u + 2u);
  cachefiles_msg h;
  std::memcpy(&h, b.data(), sizeof h);
  EXPECT_EQ(h.msg_id, 3u);
  EXPECT_EQ(h.opcode, static_cast<std::uint32_t>(CACHEFILES_OP_OPEN));
  EXPECT_EQ(h.len, b.size());
  EXPECT_EQ(h.object_id, 9u);
  cachefiles_open o;
  std::memcpy(&o, b.data() + 16, sizeof o);
  EXPECT_EQ(o.volume_key_size, 8u);  // includes the NUL
  EXPECT_EQ(o.cookie_key_size, 2u);
  EXPECT_EQ(o.fd, 5u);
  EXPECT_EQ(std::memcmp(b.data() + 32, "erofs,x\0id", 10), 0);
  auto rd = MessageEncoder::Read(4, 9, 8192, 16384);
  ASSERT_EQ(rd.size(), 32u);
  cachefiles_read r;
  std::memcpy(&r, rd.data() + 16, sizeof r);
  EXPECT_EQ(r.off, 8192u);
  EXPECT_EQ(r.len, 16384u);
  EXPECT_EQ(MessageEncoder::Close(5, 9).size(), 16u);
}

TEST(MessageDecoder, RoundTripsReadAndClose) {
  auto r = MessageDecoder::Decode(MessageEncoder::Read(1, 2, 4096, 131072), UniqueFd());
  ASSERT_TRUE(r.ok());
  auto& rd = std::get<ReadMessage>(*r);
  EXPECT_EQ(rd.msg_id, 1u);
  EXPECT_EQ(rd.object_id, 2u);
  EXPECT_EQ(rd.offset, 4096u);
  EXPECT_EQ(rd.length, 131072u);
  auto c = MessageDecoder::Decode(MessageEncoder::Close(UINT32_MAX, 3), UniqueFd());
  ASSERT_TRUE(c.ok());
  EXPECT_EQ(std::get<CloseMessage>(*c).msg_id, UINT32_MAX);
}

// A request whose header is sound but whose payload is not: handed up to be failed.
void ExpectRejectedRequest(const Result<CacheMessage>& r, CacheOpcode op, const char* why) {
  ASSERT_TRUE(r.ok()) << why << ": " << r.status().ToString();
  const auto* rejected = std::get_if<RejectedMessage>(&*r);
  ASSERT_NE(rejected, nullptr) << why;
  EXPECT_EQ(rejected->opcode, op) << why;
  EXPECT_EQ(rejected->msg_id, 1u) << why;
  EXPECT_EQ(rejected->object_id, 1u) << why;
  EXPECT_FALSE(rejected->reason.empty()) << why;
}

// Each malformed OPEN must be rejected as a request to fail, and its fd closed.
void ExpectOpenRejected(const std::vector<std::byte>& b, const char* why) {
  UniqueFd fd = NewFd();
  int raw = fd.get();
  ExpectRejectedRequest(MessageDecoder::Decode(b, std::move(fd)), CacheOpcode::kOpen, why);
  EXPECT_TRUE(IsClosed(raw)) << why;
}

TEST(MessageDecoder, RejectsMalformedOpenAndClosesItsFd) {
  auto good = MessageEncoder::Open(1, 1, "erofs,a", "bb", 0);
  {
    auto b = good;
    SetU32(b, 16, 9);  // volume key size past its NUL
    ExpectOpenRejected(b, "sizes do not add up");
  }
  {
    auto b = good;
    SetU32(b, 16, 0xFFFFFFFF);  // overflowing sizes
    SetU32(b, 20, 0xFFFFFFFF);
    ExpectOpenRejected(b, "huge sizes");
  }
  {
    auto b = good;
    b[16 + 16 + 7] = std::byte{'x'};  // volume key without NUL
    ExpectOpenRejected(b, "no NUL");
  }
  {
    auto b = good;
    b[16 + 16 + 2] = std::byte{0};  // NUL inside the volume key
    ExpectOpenRejected(b, "embedded NUL");
  }
  {
    auto b = MessageEncoder::Open(1, 1, "erofs,a", "bb", 0);
    SetU32(b, 16, 10);  // all keys to the volume: cookie empty
    SetU32(b, 20, 0);
    b[16 + 16 + 9] = std::byte{0};
    ExpectOpenRejected(b, "empty cookie");
  }
  {
    auto b = good;
    b.resize(30);
    SetU32(b, 8, 30);
    ExpectOpenRejected(b, "payload header truncated");
  }
  ExpectRejectedRequest(MessageDecoder::Decode(good, UniqueFd()), CacheOpcode::kOpen,
                        "OPEN without fd");
}

TEST(MessageDecoder, RejectsBadHeadersAndPayloadSizes) {
  auto rd = MessageEncoder::Read(1, 1, 0, 4096);
  for (std::size_t n = 0; n < rd.size(); ++n) {  // every truncation
    std::vector<std::byte> b(rd.begin(), rd.begin() + n);
    EXPECT_EQ(MessageDecoder::Decode(b, UniqueFd()).status().code(), StatusCode::kMalformed) << n;
  }
  auto b = rd;
  SetU32(b, 8, 33);  // len says more than was read
  EXPECT_EQ(MessageDecoder::Decode(b, UniqueFd()).status().code(), StatusCode::kMalformed);
  b = rd;
  b.push_back(std::byte{0});
  SetU32(b, 8, 33);  // READ payload of 17 bytes: the header names a READ to fail
  ExpectRejectedRequest(MessageDecoder::Decode(b, UniqueFd()), CacheOpcode::kRead, "17 bytes");
  auto c = MessageEncoder::Close(1, 1);
  c.resize(20);
  SetU32(c, 8, 20);  // CLOSE with a payload
  EXPECT_EQ(MessageDecoder::Decode(c, UniqueFd()).status().code(), StatusCode::kMalformed);
  b = rd;
  SetU32(b, 4, 3);  // unknown opcode
  EXPECT_EQ(MessageDecoder::Decode(b, UniqueFd()).status().code(), StatusCode::kMalformed);
  std::vector<std::byte> big(1025);
  SetU32(big, 8, 1025);
  EXPECT_EQ(MessageDecoder::Decode(big, UniqueFd()).status().code(), StatusCode::kMalformed);
}

TEST(MessageDecoder, FdWithNonOpenMessageIsClosedAndRejected) {
  UniqueFd fd = NewFd();
  int raw = fd.get();
  auto r = MessageDecoder::Decode(MessageEncoder::Read(1, 1, 0, 4096), std::move(fd));
  ExpectRejectedRequest(r, CacheOpcode::kRead, "READ with a fd");
  EXPECT_TRUE(IsClosed(raw));
  fd = NewFd();
  raw = fd.get();
  r = MessageDecoder::Decode(MessageEncoder::Close(1, 1), std::move(fd));
  EXPECT_EQ(r.status().code(), StatusCode::kMalformed) << "a CLOSE needs no answer";
  EXPECT_TRUE(IsClosed(raw));
}

TEST(MessageDecoder, MaxSizeOpenIsAccepted) {
  std::string vol(255, 'v'), cookie(1024 - 32 - 256, 'c');
  auto b = MessageEncoder::Open(1, 1, vol, cookie, 0);
  ASSERT_EQ(b.size(), 1024u);
  EXPECT_TRUE(MessageDecoder::Decode(b, NewFd()).ok());
}

TEST(MessageDecoder, TakeKernelOpenFdOnlyForOpens) {
  int raw = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  auto b = MessageEncoder::Open(1, 1, "erofs,a", "b", static_cast<std::uint32_t>(raw));
  b[16 + 16 + 3] = std::byte{0};  // malformed: the fd must still be closed
  auto r = MessageDecoder::Decode(b, MessageDecoder::TakeKernelOpenFd(b));
  ASSERT_TRUE(r.ok());
  EXPECT_TRUE(std::holds_alternative<RejectedMessage>(*r));
  EXPECT_TRUE(IsClosed(raw));
  EXPECT_FALSE(MessageDecoder::TakeKernelOpenFd(MessageEncoder::Read(1, 1, 0, 1)).valid());
}

// A quick in-test fuzz loop (the libFuzzer target does this at scale): mutate valid
// messages; the decoder never crashes, always consumes the fd, and what it accepts
// re-encodes to the same bytes.
TEST(MessageDecoder, RandomMutationsAreRejectedOrRoundTrip) {
  std::mt19937 rng(12345);
  std::vector<std::vector<std::byte>> seeds = {MessageEncoder::Open(1, 1, "erofs,fsid", "blob", 0),
                                               MessageEncoder::Read(2, 1, 0, 4096),
                                               MessageEncoder::Close(3, 1)};
  int accepted = 0;
  for (int iter = 0; iter < 20000; ++iter) {
    auto b = seeds[rng() % seeds.size()];
    int flips = 1 + rng() % 4;
    for (int i = 0; i < flips; ++i) {
      switch (rng() % 3) {
        case 0:
          if (!b.empty()) b[rng() % b.size()] = static_cast<std::byte>(rng());
          break;
        case 1:
          b.resize(rng() % 64);
          break;
        default:
          b.push_back(static_cast<std::byte>(rng()));
      }
    }
    bool with_fd = rng() % 2;
    UniqueFd fd = with_fd ? NewFd() : UniqueFd();
    int raw = fd.get();
    auto r = MessageDecoder::Decode(b, std::move(fd));
    if (!r.ok()) {
      ASSERT_EQ(r.status().code(), StatusCode::kMalformed);
      if (with_fd) {
        ASSERT_TRUE(IsClosed(raw));
      }
      continue;
    }
    if (std::holds_alternative<RejectedMessage>(*r)) {
      if (with_fd) {
        ASSERT_TRUE(IsClosed(raw));
      }
      continue;
    }
    ++accepted;
    std::vector<std::byte> again;
    if (auto* o = std::get_if<OpenMessage>(&*r)) {
      std::uint32_t fdnum;
      std::memcpy(&fdnum, b.data() + 24, 4);
      again = MessageEncoder::Open(o->msg_id, o->object_id, o->volume_key, o->cookie_key, fdnum,
                                   o->flags);
    } else if (auto* rd = std::get_if<ReadMessage>(&*r)) {
      again = MessageEncoder::Read(rd->msg_id, rd->object_id, rd->offset, rd->length);
    } else {
      auto& c = std::get<CloseMessage>(*r);
      again = MessageEncoder::Close(c.msg_id, c.object_id);
    }
    ASSERT_EQ(again, b);
  }
  EXPECT_GT(accepted, 0);
}

}  // namespace
}  // namespace lazyblob
