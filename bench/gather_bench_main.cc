// CPU top-k gather benchmark: how fast the client's load/store path fetches the
// selected entries of a decode batch from a shared-memory region, against a contiguous
// memcpy of the same byte count out of the same region, measured in the same run
// (interleaved repetitions, medians). For each thread count the gather runs through a
// client with that many copy_threads and the memcpy is split the same way over as
// many threads (same unit size, same worker pool), so both sides use the same cores.
//
//   sparsepool_gather_bench [--address=127.0.0.1:7070] [--threads=1,2] [--requests=8]
//       [--tokens=11000] [--layers=61] [--entry_bytes=656] [--topk=2048] [--reps=300]
// (--help lists the flags with their defaults.)
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <random>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "bench/flag.h"
#include "bench/median.h"
#include "client/client_internal.h"
#include "client/sparsepool_client.h"
#include "common/command_line.h"
#include "common/units.h"
#include "common/worker_pool.h"
#include "transport/cxl/cxl_data_plane.h"
#include "transport/cxl/region_mapping.h"

ABSL_FLAG(std::string, address, "127.0.0.1:7070", "the daemon's gRPC address (HOST:PORT)");
ABSL_FLAG(std::vector<std::string>, threads, {"1"},
          "copy thread counts to measure, comma-separated positive numbers (each a client's copy_threads and "
          "the memcpy baseline's threads)");
ABSL_FLAG(uint32_t, requests, 8, "requests (sequences) in the decode batch each fetch reads");
ABSL_FLAG(uint64_t, tokens, 11000, "tokens per sequence");
ABSL_FLAG(uint32_t, layers, 61, "layers per sequence");
ABSL_FLAG(uint32_t, entry_bytes, 656, "bytes per entry (one token of one layer)");
ABSL_FLAG(uint32_t, topk, 2048, "entries selected per request and fetch (top-k)");
ABSL_FLAG(int, reps, 300, "repetitions per thread count (medians are reported)");

namespace sparsepool {
namespace {

// The flags' values (their defaults are the flags').
struct Options {
  std::string address;
  uint32_t requests = 0;
  uint64_t tokens = 0;
  uint32_t layers = 0;
  uint32_t entry_bytes = 0;
  uint32_t topk = 0;
  int reps = 0;
  std::vector<int> threads;
};

// Reads the flags into `o`; false (having said why) for a value the benchmark refuses.
bool ReadOptions(Options& o) {
  o.address = absl::GetFlag(FLAGS_address);
  o.requests = absl::GetFlag(FLAGS_requests);
  o.tokens = absl::GetFlag(FLAGS_tokens);
  o.layers = absl::GetFlag(FLAGS_layers);
  o.entry_bytes = absl::GetFlag(FLAGS_entry_bytes);
  o.topk = absl::GetFlag(FLAGS_topk);
  o.reps = absl::GetFlag(FLAGS_reps);
  const std::vector<std::string> threads = absl::GetFlag(FLAGS_threads);
  if (!bench::PositiveNumbers(threads, o.threads)) {
    RefuseFlagValue("threads", absl::StrJoin(threads, ","), "positive numbers, comma-separated");
    return false;
  }
  return true;
}

int Fail(const absl::Status& status) {
  std::fprintf(stderr, "sparsepool_gather_bench: %s\n", status.ToString().c_str());
  return 1;
}

int Run(int argc, char** argv) {
  ParseFlagsOnly(argc, argv,
                 "CPU top-k gather through the client's load/store path against memcpy of the same bytes, "
                 "per copy thread count, on a running daemon\n\n"
                 "usage: sparsepool_gather_bench [--flag=value...]");
  Options o;
  if (!ReadOptions(o)) return 2;
  ClientOptions client_options;
  client_options.address = o.address;
  auto connected = Client::Connect(client_options);
  if (!connected.ok()) return Fail(connected.status());
  Client& client = **connected;

  // Fill the pool. Each entry starts with its (request, layer, token) so that fetched
  // entries can be checked; the rest is a copy, so filling runs at memcpy speed.
  std::vector<SequenceId> batch;
  std::vector<std::byte> entries(o.tokens * o.entry_bytes, std::byte{0x5A});
  for (uint32_t r = 0; r < o.requests; ++r) {
    SequenceSpec spec;
    spec.layers = o.layers;
    spec.entry_bytes = o.entry_bytes;
    spec.tokens = o.tokens;
    auto id = client.CreateSequence(spec);
    if (!id.ok()) return Fail(id.status());
    for (uint32_t layer = 0; layer < o.layers; ++layer) {
      for (uint64_t t = 0; t < o.tokens; ++t) {
        const uint64_t tag[2] = {(uint64_t{r} << 32) | layer, t};
        std::memcpy(entries.data() + t * o.entry_bytes, tag, sizeof(tag));
      }
      absl::Status written = client.WriteEntries(*id, layer, 0, entries);
      if (!written.ok()) return Fail(written);
    }
    batch.push_back(*id);
  }
  auto layout = internal::Layout(client, batch[0]);
  if (!layout.ok()) return Fail(layout.status());
  auto kind = ParseRegionKind(layout->region.kind);
  auto region = MappedRegion::Attach(*kind, layout->region.path, layout->region.size_bytes);
  if (!region.ok()) return Fail(region.status());
  // Map every page of the baseline's own view now, as the client's writes did for its
  // view: neither side of the comparison pays first-touch page faults while timed.
  volatile std::byte sink{};
  for (uint64_t offset = 0; offset < region->size(); offset += 4096) sink = region->base()[offset];
  (void)sink;
  const uint64_t pool_bytes = uint64_t{o.requests} * o.tokens * o.layers * o.entry_bytes;

  // One reading client and one memcpy worker pool per thread count.
  std::vector<std::unique_ptr<Client>> readers;
  std::vector<std::unique_ptr<WorkerPool>> copiers;
  for (int threads : o.threads) {
    ClientOptions reader_options = client_options;
    reader_options.copy_threads = threads;
    auto reader = Client::Connect(reader_options);
    if (!reader.ok()) return Fail(reader.status());
    readers.push_back(*std::move(reader));
    copiers.push_back(std::make_unique<WorkerPool>(threads));
  }

  const size_t k = o.topk;
  const uint64_t useful = uint64_t{o.requests} * k * o.entry_bytes;
  const uint64_t gather_unit = CxlDataPlane::kCopyUnitEntries * o.entry_bytes;
  std::vector<int32_t> indices(o.requests * k);
  std::vector<std::byte> out(useful);
  std::mt19937_64 rng(1);
  std::vector<std::vector<double>> gather_s(o.threads.size());
  std::vector<std::vector<double>> memcpy_s[2] = {gather_s, gather_s};  // [split][threads]
  uint64_t copy_from = 0;
  for (int rep = 0; rep < o.reps; ++rep) {
    for (size_t t = 0; t < o.threads.size(); ++t) {
      const uint32_t layer = rng() % o.layers;  // fresh each time: nothing left in caches
      for (auto& index : indices) index = static_cast<int32_t>(rng() % o.tokens);
      auto start = std::chrono::steady_clock::now();
      absl::Status fetched = readers[t]->FetchTopK(layer, batch, indices, absl::MakeSpan(out));
      gather_s[t].push_back(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
      if (!fetched.ok()) return Fail(fetched);
      for (size_t i = 0; i < indices.size(); i += 97) {
        uint64_t tag[2];
        std::memcpy(tag, out.data() + i * o.entry_bytes, sizeof(tag));
        if (tag[0] != ((uint64_t{i / k} << 32) | layer) || tag[1] != uint64_t(indices[i])) {
          return Fail(absl::DataLossError(absl::StrCat("wrong entry at slot ", i)));
        }
      }
      // Baselines: the same byte count, contiguous, from a part of the region not just
      // read, split over the same threads two ways: one part per thread (glibc's memcpy
      // picks its own strategy for big copies) and units of the gather's size (the same
      // dispatch as the gather). The gather is compared with the faster of the two.
      for (size_t split = 0; split < 2; ++split) {
        copy_from = (copy_from + useful * 7) % (region->size() - useful);
        const std::byte* from = region->base() + copy_from;
        const uint64_t unit_bytes = split == 0 ? (useful + o.threads[t] - 1) / o.threads[t] : gather_unit;
        start = std::chrono::steady_clock::now();
        copiers[t]->ParallelFor((useful + unit_bytes - 1) / unit_bytes, [&](size_t unit) {
          const uint64_t first = unit * unit_bytes;
          std::memcpy(out.data() + first, from + first, std::min(unit_bytes, useful - first));
        });
        memcpy_s[split][t].push_back(
            std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
      }
    }
  }
  std::printf("CPU top-k gather: %u requests x top-%u of %u-byte entries per call "
              "(%s useful), pool of %s in region %s (%s), %d reps, fresh random indices and layer each\n",
              o.requests, o.topk, o.entry_bytes, FormatBytes(useful).c_str(),
              FormatBytes(pool_bytes).c_str(), layout->region.path.c_str(),
              FormatBytes(layout->region.size_bytes).c_str(), o.reps);
  std::printf("| threads | gather (FetchTopK) per call | GB/s (useful bytes) | memcpy, one part per thread | GB/s | memcpy, %s units | GB/s | gather / faster memcpy |\n"
              "|---|---|---|---|---|---|---|---|\n", FormatBytes(gather_unit).c_str());
  for (size_t t = 0; t < o.threads.size(); ++t) {
    const double gather_gbs = useful / bench::Median(gather_s[t]) / 1e9;
    const double parts_gbs = useful / bench::Median(memcpy_s[0][t]) / 1e9;
    const double units_gbs = useful / bench::Median(memcpy_s[1][t]) / 1e9;
    std::printf("| %d | %.2f ms | %.2f | %.2f ms | %.2f | %.2f ms | %.2f | %.2f |\n", o.threads[t],
                bench::Median(gather_s[t]) * 1e3, gather_gbs, bench::Median(memcpy_s[0][t]) * 1e3,
                parts_gbs, bench::Median(memcpy_s[1][t]) * 1e3, units_gbs,
                gather_gbs / std::max(parts_gbs, units_gbs));
  }
  std::printf("target: gather / memcpy >= 0.60\n");
  for (SequenceId id : batch) (void)client.ReleaseSequence(id);
  return 0;
}

}  // namespace
}  // namespace sparsepool

int main(int argc, char** argv) { return sparsepool::Run(argc, argv); }
