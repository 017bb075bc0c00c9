// Size flags (the grammar both binaries share), human sizes and rates, the store gauges
// as `stat --prometheus` prints them, and the Status -> exit code mapping of the CLI.
#include "tools/lazyblob_format.h"

#include <gtest/gtest.h>

#include "metrics/store_gauges.h"
#include "tools/byte_size.h"
#include "tools/store_gauges_from_stats.h"

#include "tools/lazyblob_exit.h"
#include "tools/lazyblob_output.h"
#include "tools/lazyblob_progress.h"

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
  EXPECT_EQ(HumanPercent(3, 4), "75.0%");
  EXPECT_EQ(HumanPercent(1, 0), "0.0%");
  EXPECT_EQ(HumanSeconds(0.5), "0.50 s");
  EXPECT_EQ(HumanSeconds(125), "2m05s");
  EXPECT_EQ(BytesPerSecond(1000, 0.5), 2000u);
  EXPECT_EQ(BytesPerSecond(1000, 0), 0u);
}

TEST(ProgressBar, EtaIsTheRemainingTimeAtTheMeanRateOnceThereIsHistory) {
  EXPECT_EQ(ProgressBar::Eta(50, 100, 10.0), "10.0 s");
  EXPECT_EQ(ProgressBar::Eta(25, 100, 100.0), "5m00s");
  EXPECT_EQ(ProgressBar::Eta(50, 100, 0.5), "");    // too little history
  EXPECT_EQ(ProgressBar::Eta(0, 100, 10.0), "");    // no rate yet
  EXPECT_EQ(ProgressBar::Eta(100, 100, 10.0), "");  // done
  EXPECT_EQ(ProgressBar::Eta(50, 0, 10.0), "");     // unknown total
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

TEST(StoreGaugesText, EveryGaugeHasHelpTypeAndOneSample) {
  StoreStats s;
  s.blobs = 3;
  s.stored_bytes = 12345678901ull;
  const std::string text = StoreGaugesText(StoreGaugesFrom(s));
  for (const char* name : {"blobs", "chunks", "logical_bytes", "unique_bytes", "stored_bytes",
                           "packs", "pack_file_bytes", "dedup_ratio", "compression_ratio"}) {
    EXPECT_NE(text.find(std::string("# TYPE lazyblob_store_") + name + " gauge\n"),
              std::string::npos)
        << name;
  }
  EXPECT_NE(text.find("# HELP lazyblob_store_blobs "), std::string::npos);
  EXPECT_NE(text.find("# TYPE lazyblob_store_blobs gauge\nlazyblob_store_blobs 3\n"),
            std::string::npos);
  EXPECT_NE(text.find("\nlazyblob_store_stored_bytes 12345678901\n"), std::string::npos);
  EXPECT_EQ(text.back(), '\n');
}

}  // namespace
}  // namespace lazyblob::cli
