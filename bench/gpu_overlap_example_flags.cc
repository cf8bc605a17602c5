#include "bench/gpu_overlap_example_flags.h"

#include "common/command_line.h"

namespace sparsepool::bench {

void ParseGpuOverlapExampleCommandLine(int argc, char** argv) {
  ParseFlagsOnly(argc, argv,
                 "example: fetching layer l+1 overlaps computing layer l (two streams, decode buffers ordered "
                 "by CUDA events), against the same work on one stream; takes no flags (needs a CUDA device)\n\n"
                 "usage: sparsepool_gpu_overlap_example");
}

}  // namespace sparsepool::bench
