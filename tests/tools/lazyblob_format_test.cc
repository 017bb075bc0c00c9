// Size flags, human sizes and the Status -> exit code mapping of the lazyblob CLI.
#include "tools/lazyblob_format.h"

#include <gtest/gtest.h>

#include "tools/lazyblob_exit.h"
#include "tools/lazyblob_output.h"

namespace lazyblob::cli {
namespace {

TEST(ParseByteSize, AcceptsPlainBytesAndBinarySuffixes) {
  EXPECT_EQ(*ParseByteSize("4096"), 4096u);
  EXPECT_EQ(*ParseByteSize("64K"), 65536u);
  EXPECT_EQ(*ParseByteSize("64k"), 65536u);
  EXPECT_EQ(*ParseByteSize("64KiB"), 65536u);
  EXPECT_EQ(*ParseByteSize("64KB"), 65536u);
  EXPECT_EQ(*ParseByteSize("1M"), 1u << 20);
  EXPECT_EQ(*ParseByteSize("1MiB"), 1u << 20);
  EXPECT_EQ(*ParseByteSize("2G"), 2ull << 30);
  EXPECT_EQ(*ParseByteSize("1T"), 1ull << 40);
  EXPECT_EQ(*ParseByteSize("512B"), 512u);
}

TEST(ParseByteSize, RejectsJunkWithAnExample) {
  for (const char* bad : {"", "K", "-1", "1.5M", " 1M", "1M ", "1X", "1MiBs",
                          "99999999999999999999", "17179869184T"}) {
    auto r = ParseByteSize(bad);
    ASSERT_FALSE(r.ok()) << bad;
    EXPECT_EQ(r.status().code(), StatusCode::kInvalidArgument) << bad;
    EXPECT_NE(r.status().message().find("64K"), std::string::npos) << r.status().message();
  }
}

TEST(HumanBytes, UsesThreeSignificantDigitsAndBinaryUnits) {
  EXPECT_EQ(HumanBytes(0), "0 B");
  EXPECT_EQ(HumanBytes(1023), "1023 B");
  EXPECT_EQ(HumanBytes(1024), "1.00 KiB");
  EXPECT_EQ(HumanBytes(1536 * 1024), "1.50 MiB");
  EXPECT_EQ(HumanBytes(300ull << 30), "300 GiB");
  EXPECT_EQ(HumanRatio(2.0), "2.00x");
  EXPECT_EQ(HumanRatio(0.0), "-");
}

TEST(ExitCodeFor, DataProblemsAreOneBadInputIsTwoFailuresAreThree) {
  EXPECT_EQ(ExitCodeFor(Status::Ok()), kExitOk);
  EXPECT_EQ(ExitCodeFor(Corruption("x")), kExitDataProblem);
  for (StatusCode c :
       {StatusCode::kInvalidArgument, StatusCode::kNotFound, StatusCode::kAlreadyExists,
        StatusCode::kNoSpace, StatusCode::kBusy, StatusCode::kPermissionDenied}) {
    EXPECT_EQ(ExitCodeFor(Status(c, "x")), kExitBadInput) << StatusCodeName(c);
  }
  EXPECT_EQ(ExitCodeFor(IoError("x")), kExitFailure);
  EXPECT_EQ(ExitCodeFor(Internal("x")), kExitFailure);
  EXPECT_EQ(ExitCodeFor(Status::FromErrno(ENOSPC, "write")), kExitBadInput);
}

TEST(PrometheusText, EveryGaugeHasHelpTypeAndOneSample) {
  StoreStats s;
  s.blobs = 3;
  s.stored_bytes = 12345678901ull;
  const std::string text = PrometheusText(s);
  EXPECT_NE(text.find("# HELP lazyblob_store_blobs "), std::string::npos);
  EXPECT_NE(text.find("# TYPE lazyblob_store_blobs gauge\nlazyblob_store_blobs 3\n"),
            std::string::npos);
  EXPECT_NE(text.find("\nlazyblob_store_stored_bytes 12345678901\n"), std::string::npos);
  EXPECT_EQ(text.back(), '\n');
}

}  // namespace
}  // namespace lazyblob::cli
