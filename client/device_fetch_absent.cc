// DeviceFetcher in a build without the CUDA toolkit: Create says why there is none.
#include "client/device_fetch.h"

#include "common/built_without_cuda.h"

namespace sparsepool {

struct DeviceFetcher::State {};

DeviceFetcher::DeviceFetcher(Client* client, std::unique_ptr<State> state) : client_(client), state_(std::move(state)) {}
DeviceFetcher::~DeviceFetcher() = default;

absl::StatusOr<std::unique_ptr<DeviceFetcher>> DeviceFetcher::Create(Client*) {
  return BuiltWithoutCuda("fetching into GPU memory");
}
absl::Status DeviceFetcher::FetchTopK(uint32_t, absl::Span<const SequenceId>, absl::Span<const int32_t>, void*, size_t,
                                      cudaStream_t) {
  return BuiltWithoutCuda("fetching into GPU memory");
}
size_t DeviceFetcher::staging_bytes() const { return 0; }

}  // namespace sparsepool
