// lazyblobd's log rate limit: a line repeated in a storm (a wrong device once logged 166
// million "rejected a malformed message" lines) is shown a few times per window, then
// summarized with the number left out.
#include "tools/lazyblobd_logging.h"

#include <gtest/gtest.h>

namespace lazyblob {
namespace {

using Clock = LogRateLimiter::Clock;

TEST(LogRateLimiter, LinesDifferingOnlyInNumbersShareAKey) {
  EXPECT_EQ(LogRateLimiter::KeyOf("rejected message 17 of 4096 bytes"),
            LogRateLimiter::KeyOf("rejected message 18 of 512 bytes"));
  EXPECT_NE(LogRateLimiter::KeyOf("opened blob a"), LogRateLimiter::KeyOf("opened blob b"));
}

TEST(LogRateLimiter, AStormIsCutToTheBurstAndTheNextWindowSaysHowManyWereLeftOut) {
  LogRateLimiter::Options o;
  o.burst = 3;
  o.window = std::chrono::seconds(5);
  LogRateLimiter limiter(o);
  const Clock::time_point t0 = Clock::now();
  int shown = 0;
  for (int i = 0; i < 1000; ++i) {
    const auto v = limiter.Admit("rejected a malformed message " + std::to_string(i), t0);
    EXPECT_EQ(v.suppressed, 0u);
    shown += v.show ? 1 : 0;
  }
  EXPECT_EQ(shown, 3);
  // Another line is not affected by the storm.
  EXPECT_TRUE(limiter.Admit("worker pid 5 started", t0).show);
  const auto next =
      limiter.Admit("rejected a malformed message 1001", t0 + std::chrono::seconds(6));
  EXPECT_TRUE(next.show);
  EXPECT_EQ(next.suppressed, 997u);
  const auto after =
      limiter.Admit("rejected a malformed message 1002", t0 + std::chrono::seconds(6));
  EXPECT_EQ(after.suppressed, 0u);
}

TEST(LogRateLimiter, ManyDistinctLinesStayBounded) {
  LogRateLimiter::Options o;
  o.max_keys = 8;
  LogRateLimiter limiter(o);
  const Clock::time_point t0 = Clock::now();
  for (char c = 'a'; c <= 'z'; ++c) {
    EXPECT_TRUE(limiter.Admit(std::string("distinct line ") + c, t0).show) << c;
  }
}

}  // namespace
}  // namespace lazyblob
