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

#include "absl/flags/flag.h"
#include "absl/strings/str_format.h"
#include "common/command_line.h"
#include "bench/throughput_model.h"

ABSL_FLAG(double, gpu_gb, 141, "GPU memory per GPU, GB (H200)");
ABSL_FLAG(double, weights_gb, 84, "model weights per GPU, GB (~671 GB of FP8 weights over 8 GPUs)");
ABSL_FLAG(double, link_gbs, 48.6, "host-to-GPU gather rate, GB/s (our gather, H100, 1 GiB span: docs/gpu.md)");
ABSL_FLAG(double, rdma_gbs, 25, "RDMA rate per GPU, GB/s (one 200 Gb/s NIC per GPU)");
ABSL_FLAG(double, hbm_tbs, 4.8, "HBM bandwidth, TB/s (H200 datasheet)");
ABSL_FLAG(double, miss, 0.124, "residency cache miss fraction (80% step overlap: docs/gpu.md)");
ABSL_FLAG(double, compute_us_per_token, 20, "decode compute per token of the batch, microseconds");
ABSL_FLAG(double, compute_fixed_ms, 10, "decode compute per step whatever the batch, milliseconds");
ABSL_FLAG(double, host_gb, 200, "host memory per GPU for pulled prefixes, GB");
ABSL_FLAG(double, arrivals_per_s, 1, "request arrivals per second per GPU (the prefix pulls' queueing)");

namespace sparsepool::bench {
namespace {

int Run(int argc, char** argv) {
  ParseFlagsOnly(argc, argv,
                 "prints the decode throughput model's table per context length and cache placement "
                 "(docs/throughput_model.md)\n\nusage: sparsepool_throughput_model [--flag=value...]");
  ModelShape shape;
  NodeParams node;
  node.gpu_memory_bytes = absl::GetFlag(FLAGS_gpu_gb) * 1e9;
  node.weights_bytes = absl::GetFlag(FLAGS_weights_gb) * 1e9;
  node.reserved_bytes = 10e9;
  node.hbm_bytes_per_s = absl::GetFlag(FLAGS_hbm_tbs) * 1e12;
  node.link_bytes_per_s = absl::GetFlag(FLAGS_link_gbs) * 1e9;
  node.rdma_bytes_per_s = absl::GetFlag(FLAGS_rdma_gbs) * 1e9;
  node.cache_miss_fraction = absl::GetFlag(FLAGS_miss);
  node.compute_s_per_token = absl::GetFlag(FLAGS_compute_us_per_token) * 1e-6;
  node.compute_fixed_s = absl::GetFlag(FLAGS_compute_fixed_ms) * 1e-3;
  node.host_memory_bytes = absl::GetFlag(FLAGS_host_gb) * 1e9;
  node.arrivals_per_s = absl::GetFlag(FLAGS_arrivals_per_s);
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
