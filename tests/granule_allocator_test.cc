#include "service/granule_allocator.h"

#include <map>
#include <random>
#include <vector>

#include "gtest/gtest.h"

namespace sparsepool {
namespace {

TEST(GranuleAllocatorTest, AllocatesDisjointRunsUntilFull) {
  GranuleAllocator heap(100);
  auto a = heap.Allocate(40);
  auto b = heap.Allocate(40);
  ASSERT_TRUE(a && b);
  EXPECT_NE(*a, *b);
  EXPECT_EQ(heap.free_granules(), 20u);
  EXPECT_FALSE(heap.Allocate(21));
  EXPECT_TRUE(heap.Allocate(20));
  EXPECT_EQ(heap.free_granules(), 0u);
  EXPECT_FALSE(heap.Allocate(1));
  EXPECT_FALSE(heap.Allocate(0));
}

TEST(GranuleAllocatorTest, FreedRunsAreReusedAndFragmentationIsRespected) {
  GranuleAllocator heap(30);
  auto a = heap.Allocate(10);
  auto b = heap.Allocate(10);
  auto c = heap.Allocate(10);
  ASSERT_TRUE(a && b && c);
  heap.Free(*a, 10);
  heap.Free(*c, 10);
  EXPECT_EQ(heap.free_granules(), 20u);
  EXPECT_FALSE(heap.Allocate(11));  // 20 free, but in two runs of 10
  EXPECT_TRUE(heap.Allocate(10));
  EXPECT_TRUE(heap.Allocate(10));
}

TEST(GranuleAllocatorTest, ReserveRefusesOverlapAndOutOfRange) {
  GranuleAllocator heap(128);
  EXPECT_TRUE(heap.Reserve(10, 5));
  EXPECT_FALSE(heap.Reserve(14, 2));
  EXPECT_FALSE(heap.Reserve(120, 9));
  EXPECT_FALSE(heap.Reserve(~uint64_t{0}, 2));
  EXPECT_TRUE(heap.Reserve(15, 113));
  EXPECT_EQ(heap.free_granules(), 128u - 5 - 113);
}

// Random allocations and frees against a model: no granule is ever handed out twice,
// every run lies in range, and the free count is exact.
TEST(GranuleAllocatorTest, RandomOperationsMatchAModel) {
  constexpr uint64_t kGranules = 1000;
  GranuleAllocator heap(kGranules);
  std::vector<int> owner(kGranules, -1);
  std::map<int, std::pair<uint64_t, uint64_t>> live;
  std::mt19937 rng(7);
  int next = 0;
  for (int step = 0; step < 20000; ++step) {
    if (live.empty() || rng() % 3 != 0) {
      const uint64_t count = 1 + rng() % 40;
      auto first = heap.Allocate(count);
      if (!first) continue;
      ASSERT_LE(*first + count, kGranules);
      for (uint64_t g = *first; g < *first + count; ++g) {
        ASSERT_EQ(owner[g], -1) << "granule " << g << " handed out twice";
        owner[g] = next;
      }
      live[next++] = {*first, count};
    } else {
      auto it = live.begin();
      std::advance(it, rng() % live.size());
      heap.Free(it->second.first, it->second.second);
      for (uint64_t g = it->second.first; g < it->second.first + it->second.second; ++g) owner[g] = -1;
      live.erase(it);
    }
    uint64_t used = 0;
    for (int o : owner) used += o >= 0;
    ASSERT_EQ(heap.free_granules(), kGranules - used);
  }
}

}  // namespace
}  // namespace sparsepool
