#include "core/anon_fd_writer.h"

#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "core/aligned_buffer.h"
#include "core/unique_fd.h"
#include "tests/disk_temp_dir.h"

namespace lazyblob {
namespace {

using testing::DiskTempBase;

class AnonFdWriterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    path_ = DiskTempBase() + "/lazyblob-anonfd-XXXXXX";
    int fd = ::mkstemp(path_.data());
    ASSERT_GE(fd, 0);
    ::close(fd);
    fd_ = UniqueFd(::open(path_.c_str(), O_WRONLY | O_DIRECT | O_CLOEXEC));
    ASSERT_TRUE(fd_.valid());
  }
  void TearDown() override { ::unlink(path_.c_str()); }
  std::string path_;
  UniqueFd fd_;
};

TEST_F(AnonFdWriterTest, UnalignedOffsetIsRefusedWithEnobufs) {
  AlignedBuffer b(4096);
  Status s = WriteBlocks(fd_.get(), 512, b.span());
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.errno_value(), ENOBUFS);
}

TEST_F(AnonFdWriterTest, UnalignedBufferOrPartialBlockIsRefusedWithEinval) {
  AlignedBuffer b(8192);
  Status s = WriteBlocks(fd_.get(), 0, b.span().subspan(512, 4096));
  EXPECT_EQ(s.errno_value(), EINVAL);
  s = WriteBlocks(fd_.get(), 0, b.span().subspan(0, 1000));
  EXPECT_EQ(s.errno_value(), EINVAL);
}

TEST_F(AnonFdWriterTest, WritesWholeBlocksThroughODirect) {
  AlignedBuffer b(8192);
  std::memset(b.data(), 0xab, b.size());
  ASSERT_TRUE(WriteBlocks(fd_.get(), 4096, b.span()).ok());
  UniqueFd r(::open(path_.c_str(), O_RDONLY | O_CLOEXEC));
  unsigned char c = 0;
  ASSERT_EQ(::pread(r.get(), &c, 1, 4096 + 8191), 1);
  EXPECT_EQ(c, 0xab);
}

}  // namespace
}  // namespace lazyblob
