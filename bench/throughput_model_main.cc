// Prints the decode throughput model's table (docs/throughput_model.md): per context
// length and cache placement, the largest batch per GPU, the step time and tokens/s.
//
//   sparsepool_throughput_model [--gpu_gb=141] [--weights_gb=84] [--link_gbs=48.6]
//       [--rdma_gbs=25] [--hbm_tbs=4.8] [--miss=0.124] [--compute_us_per_token=20]
//       [--compute_fixed_ms=10] [--host_gb=200] [--arrivals_per_s=1]
//
// TTFT here is what comes after prefill: the prefix pull (with its M/D/1 wait behind
// other arrivals' pulls, at --arrivals_per_s per GPU) and the first decode step; TBT is
// the step time.
#include <cmath>
#include <cstdio>
#include <string>

#include "absl/strings/numbers.h"
#include "absl/strings/str_format.h"
#include "bench/flag.h"
#include "bench/throughput_model.h"

namespace sparsepool::bench {
namespace {

int Run(int argc, char** argv) {
  ModelShape shape;
  NodeParams node;
  node.gpu_memory_bytes = 141e9;       // H200
  node.weights_bytes = 84e9;           // ~671 GB of FP8 weights over 8 GPUs
  node.reserved_bytes = 10e9;
  node.hbm_bytes_per_s = 4.8e12;       // H200 datasheet
  node.link_bytes_per_s = 48.6e9;      // our gather, H100, 1 GiB span (docs/gpu.md)
  node.rdma_bytes_per_s = 25e9;        // one 200 Gb/s NIC per GPU
  node.cache_miss_fraction = 0.124;    // residency cache at 80% step overlap (docs/gpu.md)
  for (int i = 1; i < argc; ++i) {
    const auto [key, value] = SplitFlag(argv[i]);
    double v = 0;
    if (!absl::SimpleAtod(value, &v)) {
      std::fprintf(stderr, "bad argument %s\n", argv[i]);
      return 2;
    }
    if (key == "--gpu_gb") node.gpu_memory_bytes = v * 1e9;
    else if (key == "--weights_gb") node.weights_bytes = v * 1e9;
    else if (key == "--link_gbs") node.link_bytes_per_s = v * 1e9;
    else if (key == "--rdma_gbs") node.rdma_bytes_per_s = v * 1e9;
    else if (key == "--hbm_tbs") node.hbm_bytes_per_s = v * 1e12;
    else if (key == "--miss") node.cache_miss_fraction = v;
    else if (key == "--compute_us_per_token") node.compute_s_per_token = v * 1e-6;
    else if (key == "--compute_fixed_ms") node.compute_fixed_s = v * 1e-3;
    else if (key == "--host_gb") node.host_memory_bytes = v * 1e9;
    else if (key == "--arrivals_per_s") node.arrivals_per_s = v;
    else {
      std::fprintf(stderr, "unknown argument %s\n", argv[i]);
      return 2;
    }
  }
  std::printf("Modelled, not measured: RDMA at %.0f GB/s per GPU, %.2f arrivals/s per GPU, %.0f GB of host memory "
              "per GPU for pulled prefixes.\n\n",
              node.rdma_bytes_per_s / 1e9, node.arrivals_per_s, node.host_memory_bytes / 1e9);
  std::printf("| context | placement | batch per GPU | limit | TTFT after prefill | TBT (step) | tokens/s per GPU | "
              "link bytes per step |\n");
  std::printf("|---|---|---|---|---|---|---|---|\n");
  for (uint64_t context : {8192, 16384, 32768, 65536, 131072}) {
    for (Placement p : {Placement::kAllOnGpu, Placement::kRdmaPrefixPull, Placement::kResidencyCache,
                        Placement::kPoolTopK, Placement::kRdmaFullPrefix}) {
      const Throughput t = Evaluate(shape, node, p, context);
      const std::string ttft = std::isinf(t.ttft_seconds) ? std::string("unbounded (pulls outrun the wire)")
                                                          : absl::StrFormat("%.1f ms", t.ttft_seconds * 1e3);
      std::printf("| %lluK | %s | %u | %s | %s | %.1f ms | %.0f | %.2f GB |\n",
                  static_cast<unsigned long long>(context / 1024), PlacementName(p), t.batch, t.limit.c_str(),
                  ttft.c_str(), t.step_seconds * 1e3, t.tokens_per_second, t.link_bytes_per_step / 1e9);
    }
  }
  return 0;
}

}  // namespace
}  // namespace sparsepool::bench

int main(int argc, char** argv) { return sparsepool::bench::Run(argc, argv); }
