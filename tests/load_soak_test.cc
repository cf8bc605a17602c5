// The soak's leak check: flat footprints pass, growth past the slack fails naming what
// grew, and too short a soak says it cannot tell.
#include "bench/load_soak.h"

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace sparsepool::bench {
namespace {

using ::testing::HasSubstr;

constexpr uint64_t kMiB = uint64_t{1} << 20;

SoakMonitor Soak(uint64_t rss_start, uint64_t rss_end, uint64_t fds_start, uint64_t fds_end) {
  SoakMonitor soak;
  // Warm-up first: the daemon's caches and threads fill in the first seconds.
  soak.Add(0, 0, ProcessFootprint{rss_start / 4, 5});
  for (int t = 1; t <= 20; ++t) {
    const uint64_t rss = rss_start + (rss_end - rss_start) * t / 20;
    const uint64_t fds = fds_start + (fds_end - fds_start) * t / 20;
    soak.Add(t, t * 100, ProcessFootprint{rss, fds});
  }
  return soak;
}

TEST(LoadSoakTest, AFlatDaemonPasses) {
  const SoakMonitor soak = Soak(100 * kMiB, 105 * kMiB, 14, 15);
  EXPECT_TRUE(soak.Verdict().ok()) << soak.Verdict();
  EXPECT_THAT(soak.Markdown(), HasSubstr("against the last: flat"));
  EXPECT_THAT(soak.Csv(), HasSubstr("20.0,2000,"));
}

TEST(LoadSoakTest, GrowingDescriptorsOrMemoryFailNamingWhatGrew) {
  absl::Status fds = Soak(100 * kMiB, 100 * kMiB, 14, 200).Verdict();
  EXPECT_TRUE(absl::IsFailedPrecondition(fds));
  EXPECT_THAT(fds.message(), HasSubstr("open descriptors grew from"));
  EXPECT_THAT(fds.message(), ::testing::Not(HasSubstr("memory")));
  absl::Status rss = Soak(100 * kMiB, 400 * kMiB, 14, 14).Verdict();
  EXPECT_TRUE(absl::IsFailedPrecondition(rss));
  EXPECT_THAT(rss.message(), HasSubstr("anonymous memory grew from"));
  // The warm-up's growth (a quarter of the run) does not count.
  SoakMonitor warm;
  warm.Add(0, 0, ProcessFootprint{1 * kMiB, 5});
  for (int t = 1; t <= 20; ++t) warm.Add(t, t, ProcessFootprint{t < 5 ? 10 * kMiB * t : 50 * kMiB, 14});
  EXPECT_TRUE(warm.Verdict().ok()) << warm.Verdict();
}

TEST(LoadSoakTest, TooFewSamplesCannotTell) {
  SoakMonitor soak;
  soak.Add(0, 0, ProcessFootprint{kMiB, 5});
  soak.Add(1, 1, ProcessFootprint{kMiB, 5});
  EXPECT_TRUE(absl::IsFailedPrecondition(soak.Verdict()));
  EXPECT_THAT(soak.Verdict().message(), HasSubstr("too few"));
}

}  // namespace
}  // namespace sparsepool::bench
