// Test-only fixture: a KernelSimulator with a cache dir on a disk-backed filesystem, one device
// (SimDevice) and a TestResponder on it.
#ifndef LAZYBLOB_TESTS_TRANSPORT_SIM_FIXTURE_H_
#define LAZYBLOB_TESTS_TRANSPORT_SIM_FIXTURE_H_

#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <memory>
#include <string>

#include "tests/disk_temp_dir.h"
#include "tests/transport/test_responder.h"
#include "transport/kernel_simulator.h"
#include "transport/sim_device.h"

namespace lazyblob::testing {

class SimTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = MakeDiskTempDir("lazyblob-sim-");
    ASSERT_FALSE(dir_.empty());
  }
  void TearDown() override {
    responder_.reset();
    dev_.reset();
    sim_.reset();
    std::filesystem::remove_all(dir_);
  }
  // Opens the simulator and a device with a responder answering OPEN with `blob_size`.
  void StartSim(std::uint64_t blob_size, KernelSimulatorOptions opt = {}) {
    opt.cache_dir = dir_;
    opt.reply_timeout_ms = 20'000;
    auto sim = KernelSimulator::Open(opt);
    ASSERT_TRUE(sim.ok()) << sim.status().ToString();
    sim_ = std::move(*sim);
    auto fd = sim_->OpenDevice();
    ASSERT_TRUE(fd.ok()) << fd.status().ToString();
    auto dev = SimDevice::Adopt(std::move(*fd));
    ASSERT_TRUE(dev.ok());
    dev_ = std::move(*dev);
    responder_ = std::make_unique<TestResponder>(dev_.get(), blob_size);
    responder_->Start();
  }
  std::string SourceImage(std::uint64_t size) {
    std::string p = dir_ + "/source-" + std::to_string(size);
    WritePatternFile(p, size);
    return p;
  }
  template <typename Pred>
  static bool Eventually(Pred pred) {
    for (int i = 0; i < 3000; ++i) {
      if (pred()) return true;
      ::usleep(10'000);
    }
    return false;
  }

  std::string dir_;
  std::unique_ptr<KernelSimulator> sim_;
  std::unique_ptr<SimDevice> dev_;
  std::unique_ptr<TestResponder> responder_;
};

inline std::size_t CountOp(const std::vector<SeenMessage>& v, CacheOpcode op) {
  std::size_t n = 0;
  for (auto& m : v) n += m.op == op;
  return n;
}

}  // namespace lazyblob::testing

#endif  // LAZYBLOB_TESTS_TRANSPORT_SIM_FIXTURE_H_
