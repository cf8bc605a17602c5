// GPU top-k gather benchmark (issue 3): the link rate, then our gathers of 64 requests
// x 2048 entries x 656 bytes from a registered host region into HBM, fresh random
// indices each repetition, against the plain warp-per-entry kernel, one
// cudaMemcpyAsync per entry and cudaMemcpyBatchAsync, all in the same run.
//
//   sparsepool_gpu_gather_bench [--big_gib=32] [--reps=20] [--extents=1,16,64,2048 | --churn=N]
// (--help lists the flags; they are defined and parsed in bench/gpu_gather_bench_flags.cc,
// plain C++, and --help needs no GPU.)
#include <cuda_runtime_api.h>
#include <sys/mman.h>

#include <algorithm>
#include <functional>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <numeric>
#include <random>
#include <string>
#include <vector>

#include "bench/median.h"
#include "bench/overlap_trace.h"
#include "kernels/residency_cache.h"
#include "kernels/cuda_check.h"
#include "kernels/topk_gather.h"
#include "bench/churn_layout.h"
#include "bench/gpu_gather_bench_flags.h"
#include "bench/link_rate.h"

namespace sparsepool::kernels {
namespace {


constexpr uint32_t kEntry = 656;
constexpr uint32_t kPageTokens = 64;
constexpr uint64_t kPageBytes = 45056;  // 64 x 656 rounded up to 4 KiB granules, as the daemon lays pages
constexpr uint32_t kBatch = 64;
constexpr uint32_t kTopK = 2048;

// Fresh indices for every repetition, drawn on the GPU so drawing is not timed.
__global__ void DrawIndices(int32_t* indices, const RowPages* rows, uint32_t k, uint64_t seed) {
  const uint32_t row = blockIdx.x;
  for (uint32_t i = threadIdx.x; i < k; i += blockDim.x) {
    uint64_t x = seed ^ (uint64_t(row) << 32) ^ i;
    x = (x ^ (x >> 33)) * 0xff51afd7ed558ccdull;
    x = (x ^ (x >> 33)) * 0xc4ceb9fe1a85ec53ull;
    x ^= x >> 33;
    indices[uint64_t(row) * k + i] = static_cast<int32_t>(x % rows[row].tokens);
  }
}

struct Pool {
  std::byte* host = nullptr;
  const std::byte* device = nullptr;
  uint64_t bytes = 0;
};

Pool MakePool(uint64_t bytes) {
  Pool pool;
  pool.bytes = bytes;
  void* mapped = mmap(nullptr, bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (mapped == MAP_FAILED) {
    std::perror("mmap");
    std::exit(1);
  }
  pool.host = static_cast<std::byte*>(mapped);
  for (uint64_t i = 0; i < bytes; i += 4096) std::memset(pool.host + i, int(i >> 12), 4096);
  SPARSEPOOL_CHECK_CUDA(cudaHostRegister(pool.host, bytes, cudaHostRegisterMapped));
  void* device = nullptr;
  SPARSEPOOL_CHECK_CUDA(cudaHostGetDevicePointer(&device, pool.host, 0));
  pool.device = static_cast<const std::byte*>(device);
  return pool;
}

void FreePool(Pool& pool) {  // the scenario's device buffers live until the program exits
  cudaHostUnregister(pool.host);
  munmap(pool.host, pool.bytes);
}

struct Timing {
  double seconds;
  double gbs;
};

struct Scenario {
  const char* name;
  Pool pool;
  // rows_by_layer[l]: device RowPages [kBatch] for layer l; host page offsets too.
  std::vector<RowPages*> rows_by_layer;
  std::vector<std::vector<std::vector<uint64_t>>> host_pages;  // [layer][row][page]
  uint64_t tokens = 0;
  std::vector<uint64_t> row_tokens;  // when set, each row's own token count
  void* scratch = nullptr;  // for the batch sort
  uint64_t scratch_bytes = 0;
};

// Times each of `launches` over `reps` repetitions, interleaved (A B C A B C ...) on
// the same fresh indices each repetition, so that the machine's noise falls on all of
// them alike; medians.
template <typename Launch>
std::vector<Timing> TimeEach(Scenario& s, int32_t* indices, cudaStream_t stream, int reps,
                             const std::vector<Launch>& launches) {
  cudaEvent_t start, stop;
  SPARSEPOOL_CHECK_CUDA(cudaEventCreate(&start));
  SPARSEPOOL_CHECK_CUDA(cudaEventCreate(&stop));
  std::vector<std::vector<double>> seconds(launches.size());
  std::mt19937_64 rng(99);
  for (int rep = -2; rep < reps; ++rep) {  // two warm-ups
    const uint32_t layer = rng() % s.rows_by_layer.size();
    DrawIndices<<<kBatch, 256, 0, stream>>>(indices, s.rows_by_layer[layer], kTopK, rng());
    for (size_t i = 0; i < launches.size(); ++i) {
      SPARSEPOOL_CHECK_CUDA(cudaEventRecord(start, stream));
      launches[i](layer);
      SPARSEPOOL_CHECK_CUDA(cudaEventRecord(stop, stream));
      SPARSEPOOL_CHECK_CUDA(cudaEventSynchronize(stop));
      float ms = 0;
      SPARSEPOOL_CHECK_CUDA(cudaEventElapsedTime(&ms, start, stop));
      if (rep >= 0) seconds[i].push_back(ms / 1e3);
    }
  }
  std::vector<Timing> timings;
  for (const auto& v : seconds) {
    const double median = bench::Median(v);
    timings.push_back({median, double(kBatch) * kTopK * kEntry / median / 1e9});
  }
  return timings;
}

template <typename Launch>
Timing TimeIt(Scenario& s, int32_t* indices, cudaStream_t stream, int reps, Launch launch) {
  return TimeEach(s, indices, stream, reps, std::vector<Launch>{launch})[0];
}

GatherLaunch MakeLaunch(const Scenario& s, uint32_t layer, int32_t* indices, std::byte* out,
                        GatherFault* fault, GatherAlgorithm algorithm) {
  GatherLaunch p;
  p.scratch = s.scratch;
  p.scratch_bytes = s.scratch_bytes;
  p.region = s.pool.device;
  p.region_bytes = s.pool.bytes;
  p.rows = s.rows_by_layer[layer];
  p.indices = indices;
  p.batch = kBatch;
  p.k = kTopK;
  p.entry_bytes = kEntry;
  p.out = out;
  p.out_bytes = uint64_t{kBatch} * kTopK * kEntry;
  p.fault = fault;
  p.algorithm = algorithm;
  return p;
}

void UploadRows(Scenario& s) {
  s.scratch_bytes = GatherScratchBytes(uint64_t{kBatch} * kTopK);
  SPARSEPOOL_CHECK_CUDA(cudaMalloc(&s.scratch, s.scratch_bytes));
  for (auto& layer_pages : s.host_pages) {
    std::vector<RowPages> rows;
    for (size_t row = 0; row < layer_pages.size(); ++row) {
      const auto& pages = layer_pages[row];
      uint64_t* d = nullptr;
      SPARSEPOOL_CHECK_CUDA(cudaMalloc(&d, pages.size() * 8));
      SPARSEPOOL_CHECK_CUDA(cudaMemcpy(d, pages.data(), pages.size() * 8, cudaMemcpyHostToDevice));
      rows.push_back(RowPages{d, s.row_tokens.empty() ? s.tokens : s.row_tokens[row], kPageTokens, kEntry});
    }
    RowPages* device_rows = nullptr;
    SPARSEPOOL_CHECK_CUDA(cudaMalloc(&device_rows, rows.size() * sizeof(RowPages)));
    SPARSEPOOL_CHECK_CUDA(cudaMemcpy(device_rows, rows.data(), rows.size() * sizeof(RowPages), cudaMemcpyHostToDevice));
    s.rows_by_layer.push_back(device_rows);
  }
}

// Every request's pages scattered at random over a span of `span` bytes (one layer):
// a fragmented pool, or a pool whose allocator interleaved requests page by page.
Scenario SpanScenario(uint64_t span) {
  Scenario s;
  s.name = "64 requests, pages shuffled over the span";
  s.pool = MakePool(span);
  const uint64_t slots = span / kPageBytes;
  const uint64_t pages_per_row = slots / kBatch;
  s.tokens = pages_per_row * kPageTokens;
  std::vector<uint64_t> order(slots);
  std::iota(order.begin(), order.end(), 0);
  std::shuffle(order.begin(), order.end(), std::mt19937_64(3));
  s.host_pages.resize(1);
  for (uint32_t r = 0; r < kBatch; ++r) {
    std::vector<uint64_t> pages;
    for (uint64_t p = 0; p < pages_per_row; ++p) pages.push_back(order[r * pages_per_row + p] * kPageBytes);
    s.host_pages[0].push_back(pages);
  }
  UploadRows(s);
  return s;
}

// DeepSeek-V3.2 as the daemon lays it out: 64 requests x 61 layers, each request's
// layer a run of its own pages, requests one after another over the whole pool.
Scenario DeepSeekScenario(uint64_t pool_bytes) {
  Scenario s;
  s.name = "DeepSeek-V3.2 layout, 64 requests x 61 layers";
  s.pool = MakePool(pool_bytes);
  constexpr uint32_t kLayers = 61;
  const uint64_t pages_per_layer = pool_bytes / kPageBytes / (uint64_t{kBatch} * kLayers);
  s.tokens = pages_per_layer * kPageTokens;
  s.host_pages.resize(kLayers);
  for (uint32_t r = 0; r < kBatch; ++r) {
    for (uint32_t l = 0; l < kLayers; ++l) {
      std::vector<uint64_t> pages;
      const uint64_t first = (uint64_t{r} * kLayers + l) * pages_per_layer;
      for (uint64_t p = 0; p < pages_per_layer; ++p) pages.push_back((first + p) * kPageBytes);
      s.host_pages[l].push_back(pages);
    }
  }
  UploadRows(s);
  return s;
}

// The DeepSeek-V3.2 layout again, but each request-layer's pages in extents of
// `extent_pages` consecutive pages, the extents scattered at random over the pool: what
// an allocator that keeps runs of that length under churn leaves. Extent 1 is every
// page on its own.
Scenario ExtentScenario(uint64_t pool_bytes, uint64_t extent_pages) {
  Scenario s;
  s.name = "DeepSeek-V3.2 layout in scattered extents";
  s.pool = MakePool(pool_bytes);
  constexpr uint32_t kLayers = 61;
  const uint64_t extents_per_layer = pool_bytes / kPageBytes / (uint64_t{kBatch} * kLayers) / extent_pages;
  const uint64_t pages_per_layer = extents_per_layer * extent_pages;
  s.tokens = pages_per_layer * kPageTokens;
  std::vector<uint64_t> slots(extents_per_layer * kBatch * kLayers);
  std::iota(slots.begin(), slots.end(), 0);
  std::shuffle(slots.begin(), slots.end(), std::mt19937_64(9));
  s.host_pages.resize(kLayers);
  size_t next = 0;
  for (uint32_t r = 0; r < kBatch; ++r) {
    for (uint32_t l = 0; l < kLayers; ++l) {
      std::vector<uint64_t> pages;
      for (uint64_t e = 0; e < extents_per_layer; ++e) {
        const uint64_t first = slots[next++] * extent_pages;
        for (uint64_t p = 0; p < extent_pages; ++p) pages.push_back((first + p) * kPageBytes);
      }
      s.host_pages[l].push_back(pages);
    }
  }
  UploadRows(s);
  return s;
}

// A pool after churn (bench/churn_layout.h), gathered as it is and with the same
// sequences' pages laid out consecutively in the same memory: what fragmentation costs.
struct Churned {
  Scenario churned;
  Scenario compacted;
  bench::ChurnedPool pool;
};

Churned ChurnScenarios(uint64_t pool_bytes, int ops) {
  Churned c;
  c.pool = bench::ChurnPool(pool_bytes, ops, kBatch, kEntry, kPageTokens);
  std::printf("%s\n", c.pool.summary.c_str());
  Pool pool;
  pool.host = c.pool.base;
  pool.bytes = pool_bytes;
  SPARSEPOOL_CHECK_CUDA(cudaHostRegister(pool.host, pool.bytes, cudaHostRegisterMapped));
  void* device = nullptr;
  SPARSEPOOL_CHECK_CUDA(cudaHostGetDevicePointer(&device, pool.host, 0));
  pool.device = static_cast<const std::byte*>(device);
  c.churned.name = "after churn";
  c.compacted.name = "same sequences, pages consecutive";
  uint64_t next_page = c.pool.heap_offset;  // the compacted copy reuses the heap's memory
  for (Scenario* sc : {&c.churned, &c.compacted}) {
    sc->pool = pool;
    sc->row_tokens = c.pool.row_tokens;
    sc->host_pages = c.pool.pages;
  }
  for (auto& layer : c.compacted.host_pages) {
    for (auto& row : layer) {
      for (uint64_t& p : row) {
        p = next_page;
        next_page += kPageBytes;
      }
    }
  }
  if (next_page > pool_bytes) {
    std::fprintf(stderr, "the compacted copy does not fit the pool\n");
    std::exit(1);
  }
  UploadRows(c.churned);
  UploadRows(c.compacted);
  return c;
}

// The residency cache on traces whose consecutive steps share 80% of their top-k:
// bytes crossing the link and entries delivered per second, against gathering every
// selected entry each step (no cache), for both policies, same indices.
void ResidencyComparison(Scenario& s, int32_t* indices, std::byte* out, GatherFault* fault,
                         cudaStream_t stream, double link_gbs) {
  constexpr int kWarmSteps = 60, kTimedSteps = 30;
  uint32_t* instances = nullptr;
  int32_t* slots = nullptr;
  std::vector<uint32_t> ids(kBatch);
  std::iota(ids.begin(), ids.end(), 0);
  SPARSEPOOL_CHECK_CUDA(cudaMalloc(&instances, kBatch * 4));
  SPARSEPOOL_CHECK_CUDA(cudaMalloc(&slots, uint64_t{kBatch} * kTopK * 4));
  SPARSEPOOL_CHECK_CUDA(cudaMemcpy(instances, ids.data(), kBatch * 4, cudaMemcpyHostToDevice));
  cudaEvent_t a, b;
  SPARSEPOOL_CHECK_CUDA(cudaEventCreate(&a));
  SPARSEPOOL_CHECK_CUDA(cudaEventCreate(&b));
  auto elapsed = [&] {
    SPARSEPOOL_CHECK_CUDA(cudaEventSynchronize(b));
    float ms = 0;
    SPARSEPOOL_CHECK_CUDA(cudaEventElapsedTime(&ms, a, b));
    return ms / 1e3;
  };
  std::printf("\nresidency cache: 64 requests x top-2048, consecutive steps share 80%% of the top-k, "
              "capacity 4096 slots per request-layer, %d steps after %d warm-up steps\n",
              kTimedSteps, kWarmSteps);
  std::printf("| policy | link bytes per step | of no cache | step time | entries/s | vs no cache |\n"
              "|---|---|---|---|---|---|\n");
  for (ResidencyPolicy policy : {ResidencyPolicy::kLru, ResidencyPolicy::kDecayedFrequency}) {
    ResidencyOptions options;
    options.instances = kBatch;
    options.capacity = 4096;
    options.max_tokens = static_cast<uint32_t>(s.tokens);
    options.entry_bytes = kEntry;
    options.policy = policy;
    auto cache = ResidencyCache::Create(options);
    if (!cache.ok()) {
      std::fprintf(stderr, "%s\n", cache.status().ToString().c_str());
      std::exit(1);
    }
    std::vector<bench::OverlapTrace> traces;
    for (uint32_t r = 0; r < kBatch; ++r) traces.emplace_back(static_cast<uint32_t>(s.tokens), kTopK, 0.8, 1000 + r);
    std::vector<int32_t> host(uint64_t{kBatch} * kTopK);
    std::vector<double> cached_s, uncached_s;
    uint64_t misses_before = 0;
    for (int step = 1; step <= kWarmSteps + kTimedSteps; ++step) {
      for (uint32_t r = 0; r < kBatch; ++r) {
        const std::vector<int32_t>& selected = traces[r].Next();
        std::copy(selected.begin(), selected.end(), host.begin() + uint64_t{r} * kTopK);
      }
      SPARSEPOOL_CHECK_CUDA(cudaMemcpy(indices, host.data(), host.size() * 4, cudaMemcpyHostToDevice));
      if (step == kWarmSteps + 1) misses_before = (*cache)->Counters()->misses;
      ResidencyStepArgs args;
      args.region = s.pool.device;
      args.rows = s.rows_by_layer[0];
      args.instances = instances;
      args.indices = indices;
      args.batch = kBatch;
      args.k = kTopK;
      args.step = static_cast<uint32_t>(step);
      args.out_slots = slots;
      args.fault = fault;
      SPARSEPOOL_CHECK_CUDA(cudaEventRecord(a, stream));
      absl::Status st = (*cache)->Step(args, stream);
      SPARSEPOOL_CHECK_CUDA(cudaEventRecord(b, stream));
      if (!st.ok()) {
        std::fprintf(stderr, "%s\n", st.ToString().c_str());
        std::exit(1);
      }
      const double cached = elapsed();
      SPARSEPOOL_CHECK_CUDA(cudaEventRecord(a, stream));
      const absl::Status sorted =
          LaunchTopKGather(MakeLaunch(s, 0, indices, out, fault, GatherAlgorithm::kSortedByAddress), stream);
      SPARSEPOOL_CHECK_CUDA(cudaEventRecord(b, stream));
      if (!sorted.ok()) {
        std::fprintf(stderr, "%s\n", sorted.ToString().c_str());
        std::exit(1);
      }
      const double uncached = elapsed();
      if (step > kWarmSteps) {
        cached_s.push_back(cached);
        uncached_s.push_back(uncached);
      }
    }
    const double misses_per_step = double((*cache)->Counters()->misses - misses_before) / kTimedSteps;
    const double entries = double(kBatch) * kTopK;
    const double cached = bench::Median(cached_s), uncached = bench::Median(uncached_s);
    std::printf("| %s | %.1f MB | %.1f%% | %.3f ms | %.1f M | %.2fx |\n",
                policy == ResidencyPolicy::kLru ? "LRU" : "decayed frequency (ours)",
                misses_per_step * kEntry / 1e6, 100 * misses_per_step / entries, cached * 1e3,
                entries / cached / 1e6, uncached / cached);
    std::printf("| no cache (gather every entry) | %.1f MB | 100%% | %.3f ms | %.1f M | 1.00x |\n",
                entries * kEntry / 1e6, uncached * 1e3, entries / uncached / 1e6);
    std::fflush(stdout);
  }
  (void)link_gbs;
  cudaFree(instances);
  cudaFree(slots);
}

int Run(int argc, char** argv) {
  const bench::GpuGatherBenchOptions options = bench::ParseGpuGatherBenchCommandLine(argc, argv);
  const uint64_t big_gib = options.big_gib;
  const int reps = options.reps;
  const std::vector<uint64_t>& extents = options.extents;  // only the extent layouts over big_gib
  const int churn_ops = options.churn_ops;                  // only the gather after N allocator operations
  int devices = 0;
  if (cudaGetDeviceCount(&devices) != cudaSuccess || devices == 0) {
    std::printf("SKIPPED: no CUDA device; run on the device machine (tools/gpu_check.sh)\n");
    return 0;
  }
  cudaDeviceProp prop;
  SPARSEPOOL_CHECK_CUDA(cudaGetDeviceProperties(&prop, 0));
  cudaStream_t stream;
  SPARSEPOOL_CHECK_CUDA(cudaStreamCreateWithFlags(&stream, cudaStreamNonBlocking));
  std::printf("device: %s, %d SMs\n", prop.name, prop.multiProcessorCount);

  // The link: measured before and after everything else (this machine is shared); the
  // higher median is the one our rates are put against.
  const auto measure_link = [&] { return bench::PinnedHostToDeviceGBs(stream, 10); };
  double link_gbs = measure_link();
  std::printf("link: cudaMemcpy 1 GiB pinned host -> device: %.1f GB/s\n\n", link_gbs);

  int32_t* indices = nullptr;
  std::byte* out = nullptr;
  GatherFault* fault = nullptr;
  const uint64_t out_bytes = uint64_t{kBatch} * kTopK * kEntry;
  SPARSEPOOL_CHECK_CUDA(cudaMalloc(&indices, uint64_t{kBatch} * kTopK * 4));
  SPARSEPOOL_CHECK_CUDA(cudaMalloc(&out, out_bytes));
  SPARSEPOOL_CHECK_CUDA(cudaMallocHost(&fault, sizeof(GatherFault)));
  std::memset(fault, 0, sizeof(*fault));

  std::printf("| pool | gather | median | GB/s | of link |\n|---|---|---|---|---|\n");
  auto report = [&](const char* pool, const char* what, Timing t) {
    std::printf("| %s | %s | %.3f ms | %.1f | %.0f%% |\n", pool, what, t.seconds * 1e3, t.gbs, 100 * t.gbs / link_gbs);
    std::fflush(stdout);
  };
  // Our gathers and the plain one, interleaved on the same indices.
  auto gathers = [&](Scenario& s, std::vector<GatherAlgorithm> algorithms) {
    std::vector<std::function<void(uint32_t)>> launches;
    for (GatherAlgorithm algorithm : algorithms) {
      launches.push_back([&, algorithm](uint32_t layer) {
        absl::Status st = LaunchTopKGather(MakeLaunch(s, layer, indices, out, fault, algorithm), stream);
        if (!st.ok()) {
          std::fprintf(stderr, "%s\n", st.ToString().c_str());
          std::exit(1);
        }
      });
    }
    return TimeEach(s, indices, stream, reps, launches);
  };
  const std::vector<GatherAlgorithm> all = {GatherAlgorithm::kSortedByAddress, GatherAlgorithm::kWarpPerEntry,
                                            GatherAlgorithm::kBatchSortedByAddress};

  if (churn_ops > 0) {
    Churned c = ChurnScenarios(big_gib << 30, churn_ops);
    char name[96];
    for (Scenario* sc : {&c.churned, &c.compacted}) {
      const std::vector<Timing> t = gathers(*sc, {GatherAlgorithm::kWarpPerEntry, GatherAlgorithm::kSortedByAddress});
      std::snprintf(name, sizeof(name), "%llu GiB, %s", static_cast<unsigned long long>(big_gib), sc->name);
      report(name, "plain warp per entry", t[0]);
      report(name, "ours (sorted by address)", t[1]);
    }
    cudaHostUnregister(c.churned.pool.host);
    bench::FreeChurnedPool(c.pool);
    return 0;
  }
  if (!extents.empty()) {
    for (uint64_t extent : extents) {
      Scenario scenario = ExtentScenario(big_gib << 30, extent);
      const std::vector<Timing> t = gathers(scenario, {GatherAlgorithm::kWarpPerEntry, GatherAlgorithm::kSortedByAddress});
      char name[96];
      std::snprintf(name, sizeof(name), "%llu GiB, DeepSeek layout, extents of %llu pages",
                    static_cast<unsigned long long>(big_gib), static_cast<unsigned long long>(extent));
      report(name, "plain warp per entry", t[0]);
      report(name, "ours (sorted by address)", t[1]);
      FreePool(scenario.pool);
    }
    return 0;
  }

  Scenario span = SpanScenario(uint64_t{1} << 30);
  const std::vector<Timing> span_times = gathers(span, all);
  const Timing span_sorted = span_times[0];
  report("1 GiB span", "ours (sorted by address)", span_times[0]);
  report("1 GiB span", "plain warp per entry", span_times[1]);
  report("1 GiB span", "ours, whole batch sorted by address", span_times[2]);

  // Baselines on the same pool: DMA per entry, and the batched DMA API.
  std::vector<int32_t> host_indices(uint64_t{kBatch} * kTopK);
  std::vector<void*> dsts(host_indices.size());
  std::vector<const void*> srcs(host_indices.size());
  std::vector<size_t> sizes(host_indices.size(), kEntry);
  auto host_addresses = [&](uint32_t) {
    SPARSEPOOL_CHECK_CUDA(cudaMemcpy(host_indices.data(), indices, host_indices.size() * 4, cudaMemcpyDeviceToHost));
    for (size_t e = 0; e < host_indices.size(); ++e) {
      const uint32_t row = e / kTopK;
      const uint32_t token = host_indices[e];
      srcs[e] = span.pool.host + span.host_pages[0][row][token / kPageTokens] + uint64_t(token % kPageTokens) * kEntry;
      dsts[e] = out + e * kEntry;
    }
  };
  const Timing per_entry = TimeIt(span, indices, stream, 3, [&](uint32_t layer) {
    // Address computation is outside the copies but inside the events: it is what a
    // caller of per-entry copies pays; it is small next to 131,072 API calls.
    host_addresses(layer);
    for (size_t e = 0; e < dsts.size(); ++e) {
      SPARSEPOOL_CHECK_CUDA(cudaMemcpyAsync(dsts[e], srcs[e], kEntry, cudaMemcpyHostToDevice, stream));
    }
  });
  report("1 GiB span", "one cudaMemcpyAsync per entry", per_entry);
  const Timing batched = TimeIt(span, indices, stream, 5, [&](uint32_t layer) {
    host_addresses(layer);
    cudaMemcpyAttributes attributes{};
    attributes.srcAccessOrder = cudaMemcpySrcAccessOrderStream;
    size_t attribute_index = 0;
    SPARSEPOOL_CHECK_CUDA(cudaMemcpyBatchAsync(dsts.data(), const_cast<const void**>(srcs.data()), sizes.data(),
                                    dsts.size(), &attributes, &attribute_index, 1, stream));
  });
  report("1 GiB span", "cudaMemcpyBatchAsync", batched);
  ResidencyComparison(span, indices, out, fault, stream, link_gbs);
  FreePool(span.pool);

  if (big_gib > 0) {
    char name[64];
    std::snprintf(name, sizeof(name), "%llu GiB, pages shuffled", static_cast<unsigned long long>(big_gib));
    Scenario scattered = SpanScenario(big_gib << 30);
    const std::vector<Timing> t = gathers(scattered, all);
    report(name, "ours (sorted by address)", t[0]);
    report(name, "plain warp per entry", t[1]);
    report(name, "ours, whole batch sorted by address", t[2]);
    FreePool(scattered.pool);
  }
  if (big_gib > 0) {
    Scenario big = DeepSeekScenario(big_gib << 30);
    const std::vector<Timing> t = gathers(big, all);
    const Timing big_sorted = t[0], big_warp = t[1], big_batch = t[2];
    char name[64];
    std::snprintf(name, sizeof(name), "%llu GiB DeepSeek", static_cast<unsigned long long>(big_gib));
    report(name, "ours (sorted by address)", big_sorted);
    report(name, "plain warp per entry", big_warp);
    report(name, "ours, whole batch sorted by address", big_batch);
    std::printf("\n%s: ours / plain warp = %.2fx\n", name, big_sorted.gbs / big_warp.gbs);
    FreePool(big.pool);
  }
  const double link_after = measure_link();
  std::printf("link measured again at the end: %.1f GB/s\n", link_after);
  if (link_after > link_gbs) {
    std::printf("(the rates above are against the first link figure, %.1f GB/s; against %.1f GB/s ours "
                "is %.0f%%)\n", link_gbs, link_after, 100 * span_sorted.gbs / link_after);
  }
  std::printf("1 GiB span: ours = %.0f%% of link (target >= 85%%); ours / per-entry cudaMemcpyAsync = "
              "%.0fx; ours / cudaMemcpyBatchAsync = %.1fx\n",
              100 * span_sorted.gbs / link_gbs, span_sorted.gbs / per_entry.gbs,
              span_sorted.gbs / batched.gbs);
  if (fault->flag != 0) {
    std::fprintf(stderr, "unexpected fault at row %d\n", fault->row);
    return 1;
  }
  return 0;
}

}  // namespace
}  // namespace sparsepool::kernels

int main(int argc, char** argv) { return sparsepool::kernels::Run(argc, argv); }
