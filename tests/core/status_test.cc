#include "core/status.h"

#include <cerrno>

#include <gtest/gtest.h>

namespace lazyblob {
namespace {

TEST(Status, FromErrnoKeepsErrnoAndMapsCode) {
  Status s = Status::FromErrno(ENOSPC, "write pack-1");
  EXPECT_EQ(s.code(), StatusCode::kNoSpace);
  EXPECT_EQ(s.errno_value(), ENOSPC);
  EXPECT_NE(s.message().find("write pack-1"), std::string::npos);
  EXPECT_EQ(Status::FromErrno(ENOENT, "x").code(), StatusCode::kNotFound);
  EXPECT_EQ(Status::FromErrno(EBUSY, "x").code(), StatusCode::kBusy);
  EXPECT_TRUE(Status::FromErrno(0, "x").ok());
}

Result<int> Half(int v) {
  if (v % 2) return InvalidArgument("odd");
  return v / 2;
}

Status UseHalf(int v, int* out) {
  LB_ASSIGN_OR_RETURN(*out, Half(v));
  return Status::Ok();
}

TEST(Status, AssignOrReturnPropagatesError) {
  int out = -1;
  EXPECT_TRUE(UseHalf(4, &out).ok());
  EXPECT_EQ(out, 2);
  Status s = UseHalf(3, &out);
  EXPECT_EQ(s.code(), StatusCode::kInvalidArgument);
  EXPECT_EQ(s.WithContext("ctx").message(), "ctx: odd");
}

}  // namespace
}  // namespace lazyblob
