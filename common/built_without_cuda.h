// What the GPU entry points of a build without the CUDA toolkit answer (a memory node's
// build: third_party/cuda/cuda_configure.bzl). Their stand-ins link in place of the real
// ones, so the same programs build everywhere and say plainly why the GPU is out of reach.
#ifndef SPARSEPOOL_COMMON_BUILT_WITHOUT_CUDA_H_
#define SPARSEPOOL_COMMON_BUILT_WITHOUT_CUDA_H_


#include "absl/status/status.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"

namespace sparsepool {

inline absl::Status BuiltWithoutCuda(absl::string_view what) {
  return absl::FailedPreconditionError(
      absl::StrCat("no CUDA device: ", what,
                   " needs CUDA, and this build of sparsepool had no CUDA toolkit (rebuild where nvcc is at "
                   "/usr/local/cuda, or name it with --repo_env=SPARSEPOOL_CUDA_PATH=...; docs/building.md)"));
}

}  // namespace sparsepool

#endif  // SPARSEPOOL_COMMON_BUILT_WITHOUT_CUDA_H_
