// The arrival generator's statistics: Poisson gaps (mean 1/rate, and their coefficient
// of variation near 1), prompt lengths log-uniform over the range, whole pages, the same
// requests for the same seed, and clear refusals of impossible parameters.
#include "bench/arrivals.h"

#include <cmath>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace sparsepool::bench {
namespace {

TEST(ArrivalsTest, GapsArePoissonAndLengthsLogUniform) {
  ArrivalParams p;
  p.requests = 20000;
  p.rate_per_s = 4.0;
  p.min_context = 16384;
  p.max_context = 131072;  // three octaves
  auto arrivals = GenerateArrivals(p);
  ASSERT_TRUE(arrivals.ok()) << arrivals.status();
  ASSERT_EQ(arrivals->size(), 20000u);
  double sum = 0, sum_sq = 0, previous = 0;
  int per_octave[3] = {0, 0, 0};
  for (const Arrival& a : *arrivals) {
    const double gap = a.at_s - previous;
    ASSERT_GT(gap, 0) << "arrivals come in order";
    previous = a.at_s;
    sum += gap;
    sum_sq += gap * gap;
    ASSERT_GE(a.context, 16384u);
    ASSERT_LE(a.context, 131072u);
    ASSERT_EQ(a.context % 64, 0u);
    ASSERT_EQ(a.output_tokens, 1024u);
    ++per_octave[std::min(2, static_cast<int>(std::log2(double(a.context) / 16384)))];
  }
  const double mean = sum / 20000;
  const double sd = std::sqrt(sum_sq / 20000 - mean * mean);
  EXPECT_NEAR(mean, 0.25, 0.25 * 0.03) << "mean gap 1 / rate";
  EXPECT_NEAR(sd / mean, 1.0, 0.05) << "exponential gaps: as variable as they are long";
  for (int octave : per_octave) EXPECT_NEAR(octave, 20000 / 3.0, 20000 * 0.02) << "a third per octave";
}

TEST(ArrivalsTest, TheSameSeedGivesTheSameRequests) {
  ArrivalParams p;
  auto a = GenerateArrivals(p);
  auto b = GenerateArrivals(p);
  p.seed = 2;
  auto c = GenerateArrivals(p);
  ASSERT_TRUE(a.ok() && b.ok() && c.ok());
  for (size_t i = 0; i < a->size(); ++i) {
    EXPECT_EQ((*a)[i].at_s, (*b)[i].at_s);
    EXPECT_EQ((*a)[i].context, (*b)[i].context);
  }
  EXPECT_NE((*a)[0].at_s, (*c)[0].at_s);
}

TEST(ArrivalsTest, ImpossibleParametersAreRefusedWithTheirValues) {
  ArrivalParams p;
  p.rate_per_s = 0;
  EXPECT_THAT(std::string(GenerateArrivals(p).status().message()), ::testing::HasSubstr("at 0/s"));
  p = ArrivalParams();
  p.min_context = 200000;
  EXPECT_THAT(std::string(GenerateArrivals(p).status().message()), ::testing::HasSubstr("contexts 200000-131072"));
  p = ArrivalParams();
  p.requests = 0;
  EXPECT_FALSE(GenerateArrivals(p).ok());
}

}  // namespace
}  // namespace sparsepool::bench
