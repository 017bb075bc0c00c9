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
using testing::MemoryTraceStore;
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
    Start(EngineOptions{}, /*attach_delay_ms=*/0);
  }
  // (Re)starts the simulator, its device and an engine with `eo` on it.
  void Start(EngineOptions eo, std::uint32_t attach_delay_ms) {
    engine_.reset();
    device_.reset();
    sim_.reset();
    KernelSimulatorOptions so;
    so.cache_dir = dir_;
    so.reply_timeout_ms = 20'000;  // a hang fails the test instead of blocking it
    so.attach_delay_ms = attach_delay_ms;
    auto sim = KernelSimulator::Open(so);
    ASSERT_TRUE(sim.ok()) << sim.status().ToString();
    sim_ = std::move(*sim);
    auto fd = sim_->OpenDevice();
    ASSERT_TRUE(fd.ok());
    auto dev = SimDevice::Adopt(std::move(*fd));
    ASSERT_TRUE(dev.ok());
    device_ = std::move(*dev);
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

// Prefetch and replay write ahead of demand from OPEN on. The kernel attaches the cache
// file to the anon fd only once the copen is processed, and refuses earlier writes with
// ENOBUFS; the simulator drops them and reports a violation. Writing right after the copen
// raced that: the daemon marked such chunks written, then answered their READs with a hole
// left (EIO, seen in the origin benchmark). Background writes now wait for the first READ.
TEST_F(EngineOnSimulatorTest, WritesAheadOfDemandWaitForTheFirstReadNotJustTheCopen) {
  constexpr int kChunks = 32;
  constexpr int kBlobs = 24;
  MemoryTraceStore traces;
  for (int b = 0; b < kBlobs; ++b) {
    std::vector<ChunkKey> keys;
    for (int i = 0; i < kChunks; ++i)
      keys.push_back(source_.AddChunk(PatternBytes(k64K, b * 100 + i)));
    const std::string id = "b" + std::to_string(b);
    source_.AddBlob(id, keys);
    AccessTrace record;  // every chunk, in order
    record.blob_size = std::uint64_t{k64K} * kChunks;
    for (int i = 0; i < kChunks; ++i) record.blocks.push_back(std::uint64_t{k64K} * i / 4096);
    ASSERT_TRUE(traces.Save(id, record).ok());
  }
  EngineOptions eo;
  eo.write_ahead_bytes = 0;  // only prefetch and replay write ahead
  eo.trace.store = &traces;
  for (const bool prefetch : {true, false}) {
    eo.prefetch_on_open = prefetch;
    Start(eo, /*attach_delay_ms=*/20);
    for (int b = prefetch ? 0 : kBlobs / 2; b < (prefetch ? kBlobs / 2 : kBlobs); ++b) {
      const std::string id = "b" + std::to_string(b);
      auto mount = sim_->Mount("erofs," + id, id);
      ASSERT_TRUE(mount.ok()) << mount.status().ToString();
      std::vector<std::byte> buf(k64K);
      for (int i = 0; i < kChunks; ++i) {
        auto r = sim_->Read(*mount, std::uint64_t{k64K} * i, buf);
        ASSERT_TRUE(r.ok()) << id << " chunk " << i << ": " << r.status().ToString();
        ASSERT_EQ(buf, PatternBytes(k64K, b * 100 + i)) << id << " chunk " << i;
      }
    }
    EXPECT_EQ(sim_->pending_requests(), 0u);
    EXPECT_TRUE(sim_->violations().empty()) << sim_->violations().front();
  }
  engine_.reset();  // before `traces`
}

}  // namespace
}  // namespace lazyblob
