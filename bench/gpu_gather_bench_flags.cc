#include "bench/gpu_gather_bench_flags.h"

#include <cstdlib>
#include <string>

#include "absl/flags/flag.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/command_line.h"

ABSL_FLAG(uint64_t, big_gib, 32,
          "size of the big pools (pages shuffled, DeepSeek layout, extents, churn), GiB; 0: the small pools only");
ABSL_FLAG(int, reps, 20, "timed repetitions per gather after two warm-ups (medians are reported), positive");
ABSL_FLAG(std::vector<std::string>, extents, {},
          "only the DeepSeek layout in scattered extents over --big_gib, one row per extent size, pages, "
          "comma-separated positive numbers (e.g. 1,16,64,2048); empty: the usual tables");
ABSL_FLAG(int, churn, 0,
          "only the gather over --big_gib of the daemon's region store after this many allocator operations, "
          "against the same pool compacted; 0: the usual tables");

namespace sparsepool::bench {

GpuGatherBenchOptions ParseGpuGatherBenchCommandLine(int argc, char** argv) {
  ParseFlagsOnly(argc, argv,
                 "GPU top-k gather benchmark (issue 3): the link rate, then our gathers from a registered host "
                 "region into HBM against the plain kernel, per-entry cudaMemcpyAsync and cudaMemcpyBatchAsync "
                 "(needs a CUDA device; says SKIPPED without one)\n\n"
                 "usage: sparsepool_gpu_gather_bench [--flag=value...]");
  GpuGatherBenchOptions o;
  o.big_gib = absl::GetFlag(FLAGS_big_gib);
  o.reps = absl::GetFlag(FLAGS_reps);
  o.churn_ops = absl::GetFlag(FLAGS_churn);
  const std::vector<std::string> extents = absl::GetFlag(FLAGS_extents);
  for (const std::string& part : extents) {
    uint64_t pages = 0;
    if (!absl::SimpleAtoi(part, &pages) || pages == 0) {
      std::exit(RefuseFlagValue("extents", absl::StrJoin(extents, ","), "positive numbers of pages, comma-separated"));
    }
    o.extents.push_back(pages);
  }
  if (o.reps <= 0) std::exit(RefuseFlagValue("reps", absl::StrCat(o.reps), "must be positive"));
  if (o.churn_ops < 0) std::exit(RefuseFlagValue("churn", absl::StrCat(o.churn_ops), "0 or more"));
  return o;
}

}  // namespace sparsepool::bench
