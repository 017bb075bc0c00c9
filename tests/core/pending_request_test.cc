#include "core/pending_request.h"

#include <vector>

#include <gtest/gtest.h>

namespace lazyblob {
namespace {

// Records answers; stands in for the kernel.
class RecordingDevice : public CacheDevice {
 public:
  int poll_fd() const override { return -1; }
  Result<std::optional<CacheMessage>> Read() override { return std::optional<CacheMessage>(); }
  Status ReplyOpen(std::uint32_t id, std::int64_t v) override {
    opens.emplace_back(id, v);
    return Status::Ok();
  }
  Status CompleteRead(int, std::uint32_t id) override {
    reads.push_back(id);
    return Status::Ok();
  }
  Status Restore() override { return Status::Ok(); }
  std::vector<std::pair<std::uint32_t, std::int64_t>> opens;
  std::vector<std::uint32_t> reads;
};

TEST(PendingOpen, DroppedUnansweredFailsWithEio) {
  RecordingDevice dev;
  { PendingOpen p(&dev, 7); }
  ASSERT_EQ(dev.opens.size(), 1u);
  EXPECT_EQ(dev.opens[0], (std::pair<std::uint32_t, std::int64_t>{7, -EIO}));
}

TEST(PendingOpen, AnsweredOnceEvenWhenMoved) {
  RecordingDevice dev;
  {
    PendingOpen p(&dev, 3);
    PendingOpen q = std::move(p);
    EXPECT_TRUE(q.Reply(4096).ok());
    EXPECT_FALSE(q.Reply(1).ok());
  }
  ASSERT_EQ(dev.opens.size(), 1u);
  EXPECT_EQ(dev.opens[0].second, 4096);
}

TEST(PendingRead, DroppedUnansweredCompletesOnce) {
  RecordingDevice dev;
  {
    PendingRead r(&dev, 9, std::make_shared<UniqueFd>());
    PendingRead s = std::move(r);
  }
  EXPECT_EQ(dev.reads, std::vector<std::uint32_t>{9});
}

TEST(PendingRead, MoveAssignOverUnansweredFailsTheOverwrittenOne) {
  RecordingDevice dev;
  PendingRead a(&dev, 1, nullptr);
  PendingRead b(&dev, 2, nullptr);
  a = std::move(b);
  EXPECT_EQ(dev.reads, std::vector<std::uint32_t>{1});
  EXPECT_TRUE(a.Complete().ok());
  EXPECT_EQ(dev.reads, (std::vector<std::uint32_t>{1, 2}));
}

}  // namespace
}  // namespace lazyblob
