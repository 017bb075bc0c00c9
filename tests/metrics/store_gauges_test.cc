#include "metrics/store_gauges.h"

#include <gtest/gtest.h>

#include "tests/metrics/exposition.h"

namespace lazyblob {
namespace {

TEST(StoreGauges, TextHasEveryGaugeWithHelpAndType) {
  const std::string text = StoreGaugesText(
      {.blobs = 3, .chunks = 40, .logical_bytes = 5000, .unique_bytes = 4000, .stored_bytes = 900});
  const auto m = testing::ParseExposition(text);
  EXPECT_EQ(m.size(), 9u);
  EXPECT_EQ(m.at("lazyblob_store_packs"), 0);
  EXPECT_DOUBLE_EQ(m.at("lazyblob_store_dedup_ratio"), 1.25);
  EXPECT_DOUBLE_EQ(m.at("lazyblob_store_compression_ratio"), 4000.0 / 900.0);
  EXPECT_EQ(m.at("lazyblob_store_blobs"), 3);
  EXPECT_EQ(m.at("lazyblob_store_chunks"), 40);
  EXPECT_EQ(m.at("lazyblob_store_logical_bytes"), 5000);
  EXPECT_EQ(m.at("lazyblob_store_unique_bytes"), 4000);
  EXPECT_EQ(m.at("lazyblob_store_stored_bytes"), 900);
  EXPECT_NE(text.find("# TYPE lazyblob_store_stored_bytes gauge\n"), std::string::npos);
  EXPECT_NE(text.find("# HELP lazyblob_store_blobs "), std::string::npos);
}

TEST(StoreGauges, AnEmptyStoreHasRatiosOfOne) {
  const auto m = testing::ParseExposition(StoreGaugesText(StoreGauges{}));
  EXPECT_EQ(m.at("lazyblob_store_dedup_ratio"), 1);
  EXPECT_EQ(m.at("lazyblob_store_compression_ratio"), 1);
}

TEST(StoreGauges, LargeByteCountsAreExact) {
  // 2^53 - 1 is the largest integer a double (the exposition's value type) holds exactly.
  const std::uint64_t big = (std::uint64_t{1} << 53) - 1;
  StoreGauges gauges;
  gauges.logical_bytes = big;
  const auto m = testing::ParseExposition(StoreGaugesText(gauges));
  EXPECT_EQ(static_cast<std::uint64_t>(m.at("lazyblob_store_logical_bytes")), big);
}

}  // namespace
}  // namespace lazyblob
