#include "transport/cachefiles_device.h"

#include <gtest/gtest.h>

namespace lazyblob {
namespace {

TEST(CachefilesDevice, MissingDeviceSaysWhatToLoad) {
  CachefilesDeviceOptions opt;
  opt.device_path = "/nonexistent/cachefiles";
  opt.cache_dir = "/var/cache/lazyblob";
  auto d = CachefilesDevice::Open(opt);
  ASSERT_FALSE(d.ok());
  EXPECT_EQ(d.status().code(), StatusCode::kNotFound);
  EXPECT_NE(d.status().message().find("CONFIG_CACHEFILES"), std::string::npos);
}

TEST(CachefilesDevice, OptionsAreValidated) {
  CachefilesDeviceOptions opt;
  EXPECT_FALSE(opt.Validate().ok());  // no cache dir
  opt.cache_dir = "/var/cache/x\nbind";
  EXPECT_FALSE(opt.Validate().ok());  // would smuggle a second command
  opt.cache_dir = "/var/cache/x";
  EXPECT_TRUE(opt.Validate().ok());
  EXPECT_FALSE(CachefilesDevice::Adopt(UniqueFd()).ok());
}

}  // namespace
}  // namespace lazyblob
