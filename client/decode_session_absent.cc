// DecodeSession in a build without the CUDA toolkit: Create says why there is none, so
// no session exists and its other members are never reached.
#include "client/decode_session.h"

#include "common/built_without_cuda.h"

namespace sparsepool {
namespace internal {
class DecodeSessionImpl {};
}  // namespace internal

namespace {
absl::Status Absent() { return BuiltWithoutCuda("a decode session"); }
}  // namespace

DecodeSession::DecodeSession(std::unique_ptr<internal::DecodeSessionImpl> impl) : impl_(std::move(impl)) {}
DecodeSession::~DecodeSession() = default;

absl::StatusOr<std::unique_ptr<DecodeSession>> DecodeSession::Create(Client*, GpuRegionRegistry*,
                                                                     const DecodeSessionOptions&) {
  return Absent();
}

absl::StatusOr<uint32_t> DecodeSession::Join(SequenceId, uint64_t, cudaStream_t) { return Absent(); }
absl::Status DecodeSession::Leave(uint32_t, cudaStream_t) { return Absent(); }
absl::Status DecodeSession::PrepareStep(cudaStream_t, std::vector<RowFailure>*) { return Absent(); }
absl::Status DecodeSession::SeedCache(uint32_t, const int32_t*, cudaStream_t) { return Absent(); }
absl::Status DecodeSession::BeginStep(cudaStream_t) { return Absent(); }
absl::Status DecodeSession::WriteLayer(uint32_t, const std::byte*, cudaStream_t) { return Absent(); }
absl::Status DecodeSession::FetchLayer(uint32_t, const int32_t*, cudaStream_t) { return Absent(); }
absl::Status DecodeSession::EndStep(cudaStream_t) { return Absent(); }
DecodeSession::Delivery DecodeSession::delivered(uint32_t) const { return {}; }
cudaEvent_t DecodeSession::hits_ready(uint32_t) const { return nullptr; }
const uint16_t* DecodeSession::miss_positions(uint32_t, uint32_t) const { return nullptr; }
const uint32_t* DecodeSession::miss_count(uint32_t, uint32_t) const { return nullptr; }
absl::StatusOr<CacheCounters> DecodeSession::cache_counters() const { return Absent(); }
const DecodeSessionOptions& DecodeSession::options() const {
  static const DecodeSessionOptions none;
  return none;
}
uint64_t DecodeSession::tokens(uint32_t) const { return 0; }
SequenceId DecodeSession::sequence(uint32_t) const { return 0; }
bool DecodeSession::active(uint32_t) const { return false; }
uint64_t DecodeSession::device_bytes() const { return 0; }

}  // namespace sparsepool
