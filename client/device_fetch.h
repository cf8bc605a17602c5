// One layer's top-k for a batch into GPU memory, over any transport of the client
// (CXL or host mappings, UCX, verbs): the same call as Client::FetchTopK with a device
// buffer and a stream. The entries land in pinned host memory first (the client's own
// data path, with its checks and counters) and are copied to the GPU on `stream`: RDMA
// straight into GPU memory needs GPUDirect RDMA, which Debian's UCX is built without.
// A GPU decode worker on the pool's CXL switch uses DecodeSession instead, whose gather
// kernel reads the region directly, inside a CUDA graph.
//
// Not capturable in a CUDA graph (the fetch runs on the host when called; a capturing
// stream is refused): a captured step fetches with DecodeSession.
//
// Two staging buffers take turns, so that a fetch fills one while the copy of the one
// before is still in flight; a fetch waits only for the copy two fetches back.
//
// One thread at a time (the client itself is thread-safe: use one fetcher per thread).
#ifndef SPARSEPOOL_CLIENT_DEVICE_FETCH_H_
#define SPARSEPOOL_CLIENT_DEVICE_FETCH_H_

#include <cstddef>
#include <cstdint>
#include <memory>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/types/span.h"
#include "client/sparsepool_client.h"

typedef struct CUstream_st* cudaStream_t;

namespace sparsepool {

class DeviceFetcher {
 public:
  // `client` must outlive the fetcher. FailedPrecondition when this process sees no
  // CUDA device (or the build has no CUDA toolkit).
  static absl::StatusOr<std::unique_ptr<DeviceFetcher>> Create(Client* client);
  // Waits for the copies in flight, then frees the staging memory.
  ~DeviceFetcher();
  DeviceFetcher(const DeviceFetcher&) = delete;
  DeviceFetcher& operator=(const DeviceFetcher&) = delete;

  // As Client::FetchTopK, into `device_out` ([rows][k][entry_bytes] bytes of GPU
  // memory): on return the copy is enqueued on `stream` (null: the legacy default
  // stream), and the entries are there once the stream reaches it. Padding (-1)
  // positions receive zeros. Staging grows to the largest fetch and stays.
  absl::Status FetchTopK(uint32_t layer, absl::Span<const SequenceId> batch, absl::Span<const int32_t> indices,
                         void* device_out, size_t out_bytes, cudaStream_t stream);

  // Pinned host bytes held for staging.
  size_t staging_bytes() const;

 private:
  struct State;  // the staging buffers and their events, in device_fetch.cc
  DeviceFetcher(Client* client, std::unique_ptr<State> state);

  Client* const client_;
  std::unique_ptr<State> state_;
};

}  // namespace sparsepool

#endif  // SPARSEPOOL_CLIENT_DEVICE_FETCH_H_
