// Example: fetching layer l+1 overlaps computing layer l. Two streams and two or three
// decode buffers; CUDA events order them (compute waits for its layer's fetch, a fetch
// waits until the buffer it overwrites has been consumed) and time them. A stand-in
// attention kernel reads each fetched buffer and does arithmetic for about as long as
// the fetch takes. Prints the first layers' timeline and the whole step's time against
// the same work on one stream.
//
//   sparsepool_gpu_overlap_example
// (no flags; --help, parsed in bench/gpu_overlap_example_flags.cc, says so without a GPU.)
#include <cuda_runtime.h>
#include <sys/mman.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <random>
#include <vector>

#include "bench/gpu_overlap_example_flags.h"
#include "kernels/cuda_check.h"
#include "kernels/topk_gather.h"

namespace sparsepool::kernels {
namespace {


constexpr uint32_t kLayers = 61, kBatch = 64, kTopK = 2048, kEntry = 656, kPageTokens = 64;
constexpr uint32_t kTokens = 8192;  // per request and layer

// Stands in for the attention kernel: reads the layer's decode buffer and does
// `rounds` multiply-adds per 16 bytes read.
__global__ void FakeAttention(const uint4* buffer, uint64_t vectors, int rounds, float* sink) {
  float acc = 0;
  for (uint64_t v = blockIdx.x * uint64_t(blockDim.x) + threadIdx.x; v < vectors;
       v += uint64_t(gridDim.x) * blockDim.x) {
    const uint4 x = buffer[v];
    float f = __uint_as_float((x.x & 0x3FFFFFFF) | 0x3F000000);
    for (int r = 0; r < rounds; ++r) f = f * 0.999f + 0.5f;
    acc += f;
  }
  if (acc == 1234.5f) *sink = acc;  // keeps the work from being optimised away
}

int Run() {
  int devices = 0;
  if (cudaGetDeviceCount(&devices) != cudaSuccess || devices == 0) {
    std::printf("SKIPPED: no CUDA device; run on the device machine\n");
    return 0;
  }
  // The pool: every request-layer's pages one after another in a registered region.
  const uint64_t page_bytes = uint64_t{kPageTokens} * kEntry;
  const uint64_t pages_per_row = kTokens / kPageTokens;
  const uint64_t region_bytes = uint64_t{kLayers} * kBatch * pages_per_row * page_bytes;
  void* mapped = mmap(nullptr, region_bytes, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
  if (mapped == MAP_FAILED) return 1;
  std::memset(mapped, 1, region_bytes);
  SPARSEPOOL_CHECK_CUDA(cudaHostRegister(mapped, region_bytes, cudaHostRegisterMapped));
  void* region = nullptr;
  SPARSEPOOL_CHECK_CUDA(cudaHostGetDevicePointer(&region, mapped, 0));

  std::vector<RowPages*> rows(kLayers);
  std::vector<int32_t*> indices(kLayers);
  std::mt19937_64 rng(5);
  for (uint32_t l = 0; l < kLayers; ++l) {
    std::vector<RowPages> host_rows;
    for (uint32_t r = 0; r < kBatch; ++r) {
      std::vector<uint64_t> pages(pages_per_row);
      for (uint64_t p = 0; p < pages_per_row; ++p) pages[p] = ((uint64_t{r} * kLayers + l) * pages_per_row + p) * page_bytes;
      uint64_t* d = nullptr;
      SPARSEPOOL_CHECK_CUDA(cudaMalloc(&d, pages.size() * 8));
      SPARSEPOOL_CHECK_CUDA(cudaMemcpy(d, pages.data(), pages.size() * 8, cudaMemcpyHostToDevice));
      host_rows.push_back(RowPages{d, kTokens, kPageTokens, kEntry});
    }
    SPARSEPOOL_CHECK_CUDA(cudaMalloc(&rows[l], kBatch * sizeof(RowPages)));
    SPARSEPOOL_CHECK_CUDA(cudaMemcpy(rows[l], host_rows.data(), kBatch * sizeof(RowPages), cudaMemcpyHostToDevice));
    std::vector<int32_t> idx(uint64_t{kBatch} * kTopK);
    for (auto& i : idx) i = static_cast<int32_t>(rng() % kTokens);
    SPARSEPOOL_CHECK_CUDA(cudaMalloc(&indices[l], idx.size() * 4));
    SPARSEPOOL_CHECK_CUDA(cudaMemcpy(indices[l], idx.data(), idx.size() * 4, cudaMemcpyHostToDevice));
  }
  const uint64_t buffer_bytes = uint64_t{kBatch} * kTopK * kEntry;
  // Decode buffers in rotation: with n, the fetch of layer l may run while the
  // attention of layers l-n+1 .. l-1 is still to consume theirs.
  std::byte* buffers[3];
  for (std::byte*& buffer : buffers) SPARSEPOOL_CHECK_CUDA(cudaMalloc(&buffer, buffer_bytes));
  uint32_t n_buffers = 2;
  GatherFault* fault = nullptr;
  float* sink = nullptr;
  SPARSEPOOL_CHECK_CUDA(cudaMallocHost(&fault, sizeof(GatherFault)));
  SPARSEPOOL_CHECK_CUDA(cudaMalloc(&sink, 4));
  std::memset(fault, 0, sizeof(*fault));

  // Attention gets the higher priority: its blocks are scheduled first when both wait.
  int lowest = 0, highest = 0;
  SPARSEPOOL_CHECK_CUDA(cudaDeviceGetStreamPriorityRange(&lowest, &highest));
  cudaStream_t fetch_stream, compute_stream;
  SPARSEPOOL_CHECK_CUDA(cudaStreamCreateWithPriority(&fetch_stream, cudaStreamNonBlocking, lowest));
  SPARSEPOOL_CHECK_CUDA(cudaStreamCreateWithPriority(&compute_stream, cudaStreamNonBlocking, highest));
  uint32_t max_blocks = 0;
  auto fetch = [&](uint32_t l, cudaStream_t stream) {
    GatherLaunch p;
    p.region = static_cast<const std::byte*>(region);
    p.region_bytes = region_bytes;
    p.rows = rows[l];
    p.indices = indices[l];
    p.batch = kBatch;
    p.k = kTopK;
    p.entry_bytes = kEntry;
    p.out = buffers[l % n_buffers];
    p.out_bytes = buffer_bytes;
    p.fault = fault;
    p.max_blocks = max_blocks;
    absl::Status s = LaunchTopKGather(p, stream);
    if (!s.ok()) {
      std::fprintf(stderr, "%s\n", s.ToString().c_str());
      std::exit(1);
    }
  };
  int rounds = 64;
  auto compute = [&](uint32_t l, cudaStream_t stream) {
    FakeAttention<<<132 * 4, 256, 0, stream>>>(reinterpret_cast<const uint4*>(buffers[l % n_buffers]),
                                               buffer_bytes / 16, rounds, sink);
    SPARSEPOOL_CHECK_CUDA(cudaGetLastError());
  };
  cudaEvent_t a, b;
  SPARSEPOOL_CHECK_CUDA(cudaEventCreate(&a));
  SPARSEPOOL_CHECK_CUDA(cudaEventCreate(&b));
  auto time_ms = [&](auto work) {
    SPARSEPOOL_CHECK_CUDA(cudaEventRecord(a, fetch_stream));
    work();
    SPARSEPOOL_CHECK_CUDA(cudaEventRecord(b, fetch_stream));
    SPARSEPOOL_CHECK_CUDA(cudaEventSynchronize(b));
    float ms = 0;
    SPARSEPOOL_CHECK_CUDA(cudaEventElapsedTime(&ms, a, b));
    return ms;
  };
  // Size the stand-in attention to take about as long as one layer's fetch.
  fetch(0, fetch_stream);
  const float fetch_ms = time_ms([&] { fetch(0, fetch_stream); });
  compute(0, fetch_stream);
  float compute_ms = time_ms([&] { compute(0, fetch_stream); });
  for (int i = 0; i < 4; ++i) {  // the kernel is part memory, part arithmetic: iterate
    rounds = std::max(1, int(rounds * fetch_ms / compute_ms));
    compute_ms = time_ms([&] { compute(0, fetch_stream); });
  }
  std::printf("one layer: fetch %.3f ms (64 x top-2048 x 656 B), stand-in attention %.3f ms\n", fetch_ms, compute_ms);

  std::vector<cudaEvent_t> fetched(kLayers), computed(kLayers), fetch_start(kLayers), compute_start(kLayers);
  for (uint32_t l = 0; l < kLayers; ++l) {
    for (cudaEvent_t* e : {&fetched[l], &computed[l], &fetch_start[l], &compute_start[l]}) SPARSEPOOL_CHECK_CUDA(cudaEventCreate(e));
  }
  for (const auto [cap, n] : {std::pair<uint32_t, uint32_t>{0, 2}, {256, 2}, {128, 2}, {64, 2}, {0, 3}, {128, 3}, {64, 3}}) {
    max_blocks = cap;
    n_buffers = n;
    // Serial: one stream, fetch then compute, layer after layer.
    const float serial_ms = time_ms([&] {
      for (uint32_t l = 0; l < kLayers; ++l) {
        fetch(l, fetch_stream);
        compute(l, fetch_stream);
      }
    });

    // Overlapped: fetch l+1 while computing l.
    SPARSEPOOL_CHECK_CUDA(cudaDeviceSynchronize());
    SPARSEPOOL_CHECK_CUDA(cudaEventRecord(a, fetch_stream));
    SPARSEPOOL_CHECK_CUDA(cudaStreamWaitEvent(compute_stream, a));
    for (uint32_t l = 0; l < kLayers; ++l) {
      if (l >= n_buffers) {  // the buffer it overwrites has been consumed
        SPARSEPOOL_CHECK_CUDA(cudaStreamWaitEvent(fetch_stream, computed[l - n_buffers]));
      }
      SPARSEPOOL_CHECK_CUDA(cudaEventRecord(fetch_start[l], fetch_stream));
      fetch(l, fetch_stream);
      SPARSEPOOL_CHECK_CUDA(cudaEventRecord(fetched[l], fetch_stream));
      SPARSEPOOL_CHECK_CUDA(cudaStreamWaitEvent(compute_stream, fetched[l]));
      SPARSEPOOL_CHECK_CUDA(cudaEventRecord(compute_start[l], compute_stream));
      compute(l, compute_stream);
      SPARSEPOOL_CHECK_CUDA(cudaEventRecord(computed[l], compute_stream));
    }
    SPARSEPOOL_CHECK_CUDA(cudaStreamWaitEvent(fetch_stream, computed[kLayers - 1]));
    SPARSEPOOL_CHECK_CUDA(cudaEventRecord(b, fetch_stream));
    SPARSEPOOL_CHECK_CUDA(cudaEventSynchronize(b));
    float overlapped_ms = 0;
    SPARSEPOOL_CHECK_CUDA(cudaEventElapsedTime(&overlapped_ms, a, b));

    auto at = [&](cudaEvent_t e) {
      float ms = 0;
      SPARSEPOOL_CHECK_CUDA(cudaEventElapsedTime(&ms, a, e));
      return ms;
    };
    std::printf("\nfetch capped at %u blocks (0: fills the GPU), %u decode buffers; timeline of the overlapped step "
                "(ms from its start):\n", max_blocks, n_buffers);
    std::printf("| layer | fetch | attention |\n|---|---|---|\n");
    for (uint32_t l = 0; l < 4; ++l) {
      std::printf("| %u | %.3f - %.3f | %.3f - %.3f |\n", l, at(fetch_start[l]), at(fetched[l]),
                  at(compute_start[l]), at(computed[l]));
    }
    double overlap_ms = 0;
    for (uint32_t l = 0; l + 1 < kLayers; ++l) {
      const double lo = std::max(at(fetch_start[l + 1]), at(compute_start[l]));
      const double hi = std::min(at(fetched[l + 1]), at(computed[l]));
      if (hi > lo) overlap_ms += hi - lo;
    }
    std::printf("\n61 layers: one stream %.2f ms, fetch of l+1 overlapping attention of l %.2f ms "
                "(%.2fx); fetches ran beside attention for %.2f ms in all\n",
                serial_ms, overlapped_ms, serial_ms / overlapped_ms, overlap_ms);
  }
  if (fault->flag != 0) return 1;
  return 0;
}

}  // namespace
}  // namespace sparsepool::kernels

int main(int argc, char** argv) {
  sparsepool::bench::ParseGpuOverlapExampleCommandLine(argc, argv);  // before the GPU: --help needs none
  return sparsepool::kernels::Run();
}
