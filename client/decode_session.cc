// DecodeSession forwards to its implementation (client/decode_session_impl.h), so that
// the public header names no device table, kernel argument or cache internal.
#include "client/decode_session.h"

#include <utility>

#include "client/decode_session_impl.h"

namespace sparsepool {

DecodeSession::DecodeSession(std::unique_ptr<internal::DecodeSessionImpl> impl) : impl_(std::move(impl)) {}
DecodeSession::~DecodeSession() = default;

absl::StatusOr<std::unique_ptr<DecodeSession>> DecodeSession::Create(Client* client, GpuRegionRegistry* regions,
                                                                     const DecodeSessionOptions& options) {
  auto impl = internal::DecodeSessionImpl::Create(client, regions, options);
  if (!impl.ok()) return impl.status();
  return std::unique_ptr<DecodeSession>(new DecodeSession(*std::move(impl)));
}

absl::StatusOr<uint32_t> DecodeSession::Join(SequenceId id, uint64_t tokens, cudaStream_t stream) {
  return impl_->Join(id, tokens, stream);
}
absl::Status DecodeSession::Leave(uint32_t row, cudaStream_t stream) { return impl_->Leave(row, stream); }
absl::Status DecodeSession::PrepareStep(cudaStream_t stream, std::vector<RowFailure>* failures) {
  return impl_->PrepareStep(stream, failures);
}
absl::Status DecodeSession::SeedCache(uint32_t layer, const int32_t* device_topk, cudaStream_t stream) {
  return impl_->SeedCache(layer, device_topk, stream);
}

absl::Status DecodeSession::BeginStep(cudaStream_t stream) { return impl_->BeginStep(stream); }
absl::Status DecodeSession::WriteLayer(uint32_t layer, const std::byte* device_entries, cudaStream_t stream) {
  return impl_->WriteLayer(layer, device_entries, stream);
}
absl::Status DecodeSession::FetchLayer(uint32_t layer, const int32_t* device_topk, cudaStream_t stream) {
  return impl_->FetchLayer(layer, device_topk, stream);
}
absl::Status DecodeSession::EndStep(cudaStream_t stream) { return impl_->EndStep(stream); }

DecodeSession::Delivery DecodeSession::delivered(uint32_t layer) const { return impl_->delivered(layer); }
cudaEvent_t DecodeSession::hits_ready(uint32_t layer) const { return impl_->hits_ready(layer); }
const uint16_t* DecodeSession::miss_positions(uint32_t row, uint32_t layer) const {
  return impl_->miss_positions(row, layer);
}
const uint32_t* DecodeSession::miss_count(uint32_t row, uint32_t layer) const { return impl_->miss_count(row, layer); }

absl::StatusOr<CacheCounters> DecodeSession::cache_counters() const {
  auto counters = impl_->cache_counters();
  if (!counters.ok()) return counters.status();
  return CacheCounters{counters->hits, counters->misses};
}

const DecodeSessionOptions& DecodeSession::options() const { return impl_->options(); }
uint64_t DecodeSession::tokens(uint32_t row) const { return impl_->tokens(row); }
SequenceId DecodeSession::sequence(uint32_t row) const { return impl_->sequence(row); }
bool DecodeSession::active(uint32_t row) const { return impl_->active(row); }
uint64_t DecodeSession::device_bytes() const { return impl_->device_bytes(); }

}  // namespace sparsepool
