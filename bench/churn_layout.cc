#include "bench/churn_layout.h"

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <random>

#include "absl/strings/str_format.h"
#include "absl/time/clock.h"
#include "service/region_store.h"

namespace sparsepool::bench {

ChurnedPool ChurnPool(uint64_t bytes, int ops, uint32_t rows, uint32_t entry_bytes, uint32_t page_tokens) {
  constexpr uint32_t kLayers = 16;
  ChurnedPool out;
  RegionSpec spec;
  spec.kind = RegionKind::kShm;
  spec.path = absl::StrFormat("/dev/shm/sparsepool-churn-bench-%d", getpid());
  spec.size_bytes = bytes;
  unlink(spec.path.c_str());
  out.path = spec.path;
  auto mapping = MappedRegion::OpenOrCreate(spec);
  if (!mapping.ok()) {
    std::fprintf(stderr, "%s\n", mapping.status().ToString().c_str());
    std::exit(1);
  }
  RecoveryReport report;
  auto opened = RegionStore::Open(0, *std::move(mapping), 8192, 0, &report);
  if (!opened.ok()) {
    std::fprintf(stderr, "%s\n", opened.status().ToString().c_str());
    std::exit(1);
  }
  RegionStore* store = opened->release();
  out.store = store;
  store->PersistIdLimit(uint64_t{1} << 40);
  std::mt19937_64 rng(17);
  std::vector<SlotIndex> live;
  SequenceId next_id = 1;
  int creates = 0, growths = 0, releases = 0, full = 0;
  const absl::Time begin = absl::Now();
  const auto release_one = [&] {
    const size_t i = rng() % live.size();
    store->Free(live[i]);
    live[i] = live.back();
    live.pop_back();
    ++releases;
  };
  for (int op = 0; op < ops; ++op) {
    const uint64_t r = rng() % 100;
    if (live.empty() || r < 25) {
      NewSequence seq;
      seq.id = next_id++;
      seq.layers = kLayers;
      seq.entry_bytes = seq.entry_stride = entry_bytes;
      seq.page_tokens = page_tokens;
      seq.tokens = 2048 + rng() % (46 * 1024);
      // Reused pages are not zeroed: nothing reads them here, and zeroing is not layout.
      auto pending = store->PrepareCreate(seq);
      if (!pending.ok()) {
        ++full;
        if (!live.empty()) release_one();
        continue;
      }
      live.push_back(store->CommitCreate(*pending));
      ++creates;
    } else if (r < 80) {
      const SlotIndex slot = live[rng() % live.size()];
      auto pending = store->PrepareExtend(slot, store->record(slot).tokens + page_tokens, 0);
      if (!pending.ok()) {
        ++full;
        release_one();
        continue;
      }
      (void)store->CommitExtend(*pending);
      ++growths;
    } else {
      release_one();
    }
  }
  out.summary = absl::StrFormat(
      "churn: %d operations (%d creates, %d growths of a page per layer, %d releases; %d found the pool full) "
      "in %.1f s; %zu sequences live, %.0f%% of the heap used",
      ops, creates, growths, releases, full, absl::ToDoubleSeconds(absl::Now() - begin), live.size(),
      100.0 * (1 - double(store->free_bytes()) / store->capacity_bytes()));
  if (live.size() < rows) {
    std::fprintf(stderr, "only %zu sequences live after the churn; need %u\n", live.size(), rows);
    std::exit(1);
  }
  out.base = store->base();
  out.bytes = bytes;
  region_format::RegionHeader header;
  std::memcpy(&header, store->base(), sizeof(header));
  out.heap_offset = header.heap_offset;
  out.pages.resize(kLayers);
  for (uint32_t row = 0; row < rows; ++row) {
    const SequenceLayout layout = store->Layout(live[row]);
    out.row_tokens.push_back(layout.tokens);
    for (uint32_t l = 0; l < kLayers; ++l) {
      out.pages[l].emplace_back(layout.page_offsets.begin() + uint64_t{l} * layout.pages_per_layer,
                                layout.page_offsets.begin() + uint64_t{l + 1} * layout.pages_per_layer);
    }
  }
  return out;
}

void FreeChurnedPool(ChurnedPool& pool) {
  delete static_cast<RegionStore*>(pool.store);
  pool.store = nullptr;
  unlink(pool.path.c_str());
}

}  // namespace sparsepool::bench
