#include "client/device_fetch.h"

#include <cuda_runtime_api.h>

#include <array>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "kernels/cuda_buffer.h"
#include "kernels/cuda_pointer.h"

namespace sparsepool {

using kernels::CudaBuffer;
using kernels::CudaMemory;
using kernels::CudaToStatus;

struct DeviceFetcher::State {
  struct Staging {
    CudaBuffer<std::byte> bytes;
    cudaEvent_t copied = nullptr;  // recorded after its copy to the GPU was enqueued
    bool in_flight = false;
  };
  std::array<Staging, 2> staging;
  size_t next = 0;

  ~State() {
    for (Staging& s : staging) {
      if (s.in_flight) cudaEventSynchronize(s.copied);  // the copy reads the buffer freed next
      if (s.copied != nullptr) cudaEventDestroy(s.copied);
    }
  }
};

DeviceFetcher::DeviceFetcher(Client* client, std::unique_ptr<State> state)
    : client_(client), state_(std::move(state)) {}

DeviceFetcher::~DeviceFetcher() = default;

absl::StatusOr<std::unique_ptr<DeviceFetcher>> DeviceFetcher::Create(Client* client) {
  if (client == nullptr) return absl::InvalidArgumentError("DeviceFetcher needs a client");
  if (absl::Status s = kernels::RequireCudaDevice("fetching into GPU memory"); !s.ok()) return s;
  auto state = std::make_unique<State>();
  for (State::Staging& s : state->staging) {
    if (absl::Status e = CudaToStatus(cudaEventCreateWithFlags(&s.copied, cudaEventDisableTiming),
                                      "creating a staging event");
        !e.ok()) {
      return e;
    }
  }
  return std::unique_ptr<DeviceFetcher>(new DeviceFetcher(client, std::move(state)));
}

absl::Status DeviceFetcher::FetchTopK(uint32_t layer, absl::Span<const SequenceId> batch,
                                      absl::Span<const int32_t> indices, void* device_out, size_t out_bytes,
                                      cudaStream_t stream) {
  if (out_bytes == 0) return client_->FetchTopK(layer, batch, indices, {});  // its checks, nothing to copy
  if (absl::Status s = kernels::CheckGpuPointer(device_out, "device_out"); !s.ok()) return s;
  if (absl::Status s = kernels::CheckStream(stream); !s.ok()) return s;
  // An error here (the legacy stream while another captures) counts as a capture too.
  cudaStreamCaptureStatus capture = cudaStreamCaptureStatusNone;
  if (const cudaError_t e = cudaStreamIsCapturing(stream, &capture);
      e != cudaSuccess || capture != cudaStreamCaptureStatusNone) {
    cudaGetLastError();
    return absl::FailedPreconditionError(
        "a DeviceFetcher fetches on the host when called, so a CUDA graph cannot capture it: a captured step "
        "fetches with DecodeSession");
  }
  if (indices.empty() || out_bytes % indices.size() != 0) {
    return absl::InvalidArgumentError(absl::StrCat("an output of ", out_bytes, " bytes does not hold ", indices.size(),
                                                   " entries of one size"));
  }
  State::Staging& staging = state_->staging[state_->next];
  if (staging.in_flight) {
    // The copy two fetches back still reads this buffer.
    if (absl::Status s = CudaToStatus(cudaEventSynchronize(staging.copied), "waiting for a staging copy"); !s.ok()) {
      return s;
    }
    staging.in_flight = false;
  }
  if (staging.bytes.bytes() < out_bytes) {
    staging.bytes = CudaBuffer<std::byte>();  // free the old one first
    auto grown = CudaBuffer<std::byte>::Allocate(out_bytes, CudaMemory::kPinnedHost);
    if (!grown.ok()) return grown.status();
    staging.bytes = *std::move(grown);
  }
  const absl::Span<std::byte> host(staging.bytes.data(), out_bytes);
  // Padding is left as it was by the fetch: zeros, not an earlier fetch's entries.
  const size_t entry_bytes = out_bytes / indices.size();
  for (size_t i = 0; i < indices.size(); ++i) {
    if (indices[i] < 0) std::memset(host.data() + i * entry_bytes, 0, entry_bytes);
  }
  if (absl::Status s = client_->FetchTopK(layer, batch, indices, host); !s.ok()) return s;
  if (absl::Status s = CudaToStatus(cudaMemcpyAsync(device_out, host.data(), out_bytes, cudaMemcpyDefault, stream),
                                    "copying fetched entries to the GPU");
      !s.ok()) {
    return s;
  }
  if (absl::Status s = CudaToStatus(cudaEventRecord(staging.copied, stream), "recording a staging copy"); !s.ok()) {
    // The copy is queued but nothing would say when it is done: wait for it here, so that
    // the buffer is never refilled or freed under it.
    cudaStreamSynchronize(stream);
    return s;
  }
  staging.in_flight = true;
  state_->next = 1 - state_->next;
  return absl::OkStatus();
}

size_t DeviceFetcher::staging_bytes() const {
  return state_->staging[0].bytes.bytes() + state_->staging[1].bytes.bytes();
}

}  // namespace sparsepool
