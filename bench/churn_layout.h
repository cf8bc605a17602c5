// A pool region after churn, for the GPU gather benchmark (item 6 of issue 11): the
// daemon's own region store, the allocator under test, takes a shm region through `ops`
// creates, decode growths (a page per layer) and releases of 16-layer sequences of
// 2K-48K tokens, kept nearly full; then `rows` live sequences' page tables are handed
// out. Plain types only: nvcc compiles the benchmark that includes this.
#ifndef SPARSEPOOL_BENCH_CHURN_LAYOUT_H_
#define SPARSEPOOL_BENCH_CHURN_LAYOUT_H_

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace sparsepool::bench {

struct ChurnedPool {
  std::byte* base = nullptr;  // the region, mapped here
  uint64_t bytes = 0;
  uint64_t heap_offset = 0;
  std::vector<uint64_t> row_tokens;                          // [row]
  std::vector<std::vector<std::vector<uint64_t>>> pages;     // [layer][row][page] region offsets
  std::string summary;                                       // what the churn did
  void* store = nullptr;                                     // owns the mapping
  std::string path;
};

// Exits the program with a message when the region cannot be made.
ChurnedPool ChurnPool(uint64_t bytes, int ops, uint32_t rows, uint32_t entry_bytes, uint32_t page_tokens);
void FreeChurnedPool(ChurnedPool& pool);

}  // namespace sparsepool::bench

#endif  // SPARSEPOOL_BENCH_CHURN_LAYOUT_H_
