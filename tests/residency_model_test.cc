// The residency cache's algorithm and policy, on the CPU model (the GPU kernel is
// checked against this model on the device machine: gpu_residency_test).
#include "kernels/residency_model.h"

#include <set>

#include "bench/overlap_trace.h"
#include "gtest/gtest.h"

namespace sparsepool::kernels {
namespace {

// token_slot and slot_token are inverse maps.
void ExpectConsistent(const ResidencyModel& m, uint32_t capacity, uint32_t tokens) {
  for (uint32_t slot = 0; slot < capacity; ++slot) {
    const int32_t token = m.token_in(slot);
    if (token >= 0) {
      ASSERT_EQ(m.slot_of(token), static_cast<int32_t>(slot));
    }
  }
  for (uint32_t token = 0; token < tokens; ++token) {
    const int32_t slot = m.slot_of(token);
    ASSERT_GE(slot, -1);
    if (slot >= 0) {
      ASSERT_EQ(m.token_in(slot), static_cast<int32_t>(token));
    }
  }
}

TEST(ResidencyModelTest, HitsMissesAndEvictionOrder) {
  ResidencyModel m(4, 100, ResidencyPolicy::kLru);
  auto r = m.Step(std::vector<int32_t>{10, 11, -1}, 100, 1);
  EXPECT_EQ(r.hits, 0u);
  EXPECT_EQ(r.misses, (std::vector<int32_t>{0, 1}));
  EXPECT_EQ(r.slots, (std::vector<int32_t>{0, 1, -1}));  // empty slots first, by index
  r = m.Step(std::vector<int32_t>{11, 12}, 100, 2);
  EXPECT_EQ(r.hits, 1u);
  EXPECT_EQ(r.slots, (std::vector<int32_t>{1, 2}));
  r = m.Step(std::vector<int32_t>{13, 14}, 100, 3);
  // Slot 3 is empty; then the least recently used: token 10 (step 1) in slot 0.
  EXPECT_EQ(r.slots, (std::vector<int32_t>{3, 0}));
  EXPECT_EQ(m.slot_of(10), -1);
  ExpectConsistent(m, 4, 100);
}

TEST(ResidencyModelTest, BadIndicesDuplicatesAndCapacity) {
  ResidencyModel m(2, 50, ResidencyPolicy::kDecayedFrequency);
  auto r = m.Step(std::vector<int32_t>{5, 50, -3, 5}, 50, 1);
  EXPECT_TRUE(r.bad_index);
  EXPECT_EQ(r.slots[0], r.slots[3]);  // a duplicate reads its first position's slot
  EXPECT_EQ(r.misses.size(), 1u);
  r = m.Step(std::vector<int32_t>{1, 2, 3}, 50, 2);
  EXPECT_TRUE(r.capacity_exceeded);
  ExpectConsistent(m, 2, 50);
  // Tokens past the sequence's current length are bad even if the map is larger.
  EXPECT_TRUE(m.Step(std::vector<int32_t>{30}, 20, 3).bad_index);
}

TEST(ResidencyModelTest, OverlapTraceHasTheOverlapItWasAskedFor) {
  bench::OverlapTrace trace(32768, 2048, 0.8, 3);
  std::vector<int32_t> previous = trace.Next();
  double overlap = 0;
  for (int step = 0; step < 100; ++step) {
    const std::vector<int32_t>& next = trace.Next();
    ASSERT_EQ(next.size(), 2048u);
    std::set<int32_t> distinct(next.begin(), next.end());
    ASSERT_EQ(distinct.size(), next.size());
    std::set<int32_t> before(previous.begin(), previous.end());
    int shared = 0;
    for (int32_t t : next) shared += before.count(t);
    overlap += shared / 2048.0;
    for (uint32_t s = 0; s < 4; ++s) ASSERT_TRUE(distinct.count(s));          // sinks
    for (uint32_t w = 0; w < 128; ++w) ASSERT_TRUE(distinct.count(32767 - w));  // window
    previous = next;
  }
  // Kept tokens give 0.8; replacements drawn by importance sometimes were there too.
  EXPECT_GT(overlap / 100, 0.79);
  EXPECT_LT(overlap / 100, 0.86);
}

// The policy's reason to exist: fewer misses than LRU when consecutive steps overlap
// and some dropped tokens come back.
TEST(ResidencyModelTest, DecayedFrequencyBeatsLruOnOverlappingSteps) {
  for (uint32_t capacity : {2560u, 4096u}) {
    bench::OverlapTrace trace(32768, 2048, 0.8, 11);
    ResidencyModel lru(capacity, 32768, ResidencyPolicy::kLru);
    ResidencyModel ours(capacity, 32768, ResidencyPolicy::kDecayedFrequency);
    uint64_t lru_misses = 0, our_misses = 0;
    for (uint32_t step = 1; step <= 300; ++step) {
      const std::vector<int32_t>& selected = trace.Next();
      const auto a = lru.Step(selected, 32768, step);
      const auto b = ours.Step(selected, 32768, step);
      if (step > 50) {  // past the cold start
        lru_misses += a.misses.size();
        our_misses += b.misses.size();
      }
    }
    EXPECT_LT(our_misses, lru_misses * 0.97) << "capacity " << capacity;
    // Bytes crossing the link per step: at most a quarter of fetching every entry.
    EXPECT_LT(our_misses / 250.0, 0.25 * 2048) << "capacity " << capacity;
    ExpectConsistent(ours, capacity, 32768);
  }
}

}  // namespace
}  // namespace sparsepool::kernels
