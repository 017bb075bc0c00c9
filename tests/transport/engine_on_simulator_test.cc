// The request engine against the kernel simulator: what reaches the engine is exactly what
// the transport decoded from the simulator's wire bytes.
#include <gtest/gtest.h>

#include "core/request_engine.h"
#include "tests/core/engine_test_doubles.h"
#include "tests/disk_temp_dir.h"
#include "transport/kernel_simulator.h"
#include "transport/sim_device.h"

namespace lazyblob {
namespace {

using testing::CountingStats;
using testing::FakeChunkSource;
using testing::PatternBytes;

constexpr std::uint32_t k64K = 64 * 1024;

class EngineOnSimulatorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::MakeDiskTempDir("lazyblob-engine-sim-");
    ASSERT_FALSE(dir_.empty());
    std::vector<ChunkKey> keys;
    for (int i = 0; i < 4; ++i) keys.push_back(source_.AddChunk(PatternBytes(k64K, 40 + i)));
    source_.AddBlob("blob", keys);
    KernelSimulatorOptions so;
    so.cache_dir = dir_;
    so.reply_timeout_ms = 20'000;  // a hang fails the test instead of blocking it
    auto sim = KernelSimulator::Open(so);
    ASSERT_TRUE(sim.ok()) << sim.status().ToString();
    sim_ = std::move(*sim);
    auto fd = sim_->OpenDevice();
    ASSERT_TRUE(fd.ok());
    auto dev = SimDevice::Adopt(std::move(*fd));
    ASSERT_TRUE(dev.ok());
    device_ = std::move(*dev);
    EngineOptions eo;
    eo.worker_threads = 4;
    auto engine = RequestEngine::Start(eo, device_.get(), &source_, &stats_);
    ASSERT_TRUE(engine.ok()) << engine.status().ToString();
    engine_ = std::move(*engine);
  }
  void TearDown() override {
    engine_.reset();
    device_.reset();
    sim_.reset();
    std::filesystem::remove_all(dir_);
  }

  std::string dir_;
  FakeChunkSource source_;
  CountingStats stats_;
  std::unique_ptr<KernelSimulator> sim_;
  std::unique_ptr<SimDevice> device_;
  std::unique_ptr<RequestEngine> engine_;
};

// Issue 14 (3): a header-valid request with a bad payload was counted and dropped, and the
// kernel request waited until the device closed. Now it is failed at once.
TEST_F(EngineOnSimulatorTest, MalformedOpenAndReadAreAnsweredAndNoReaderHangs) {
  sim_->MangleNext(SimMangle::kOpenVolumeKeyWithoutNul);
  auto refused = sim_->Mount("erofs,blob", "blob");
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.status().errno_value(), EIO) << refused.status().ToString();

  auto mount = sim_->Mount("erofs,blob", "blob");
  ASSERT_TRUE(mount.ok()) << mount.status().ToString();
  sim_->MangleNext(SimMangle::kReadPayload17Bytes);
  std::vector<std::byte> buf(4096);
  auto failed = sim_->Read(*mount, 0, buf);
  ASSERT_FALSE(failed.ok());
  EXPECT_EQ(failed.status().errno_value(), EIO) << failed.status().ToString();
  // The next, well-formed READ of the same range is served.
  auto served = sim_->Read(*mount, 0, buf);
  ASSERT_TRUE(served.ok()) << served.status().ToString();
  EXPECT_EQ(stats_.malformed.load(), 2);
  EXPECT_EQ(sim_->pending_requests(), 0u);
  EXPECT_TRUE(sim_->violations().empty());
}

}  // namespace
}  // namespace lazyblob
