// The gRPC face of the pool: translates PoolService requests into Pool calls and
// absl::Status errors into gRPC statuses of the same code and message.
#ifndef SPARSEPOOL_SERVICE_POOL_SERVICE_H_
#define SPARSEPOOL_SERVICE_POOL_SERVICE_H_

#include "absl/time/time.h"
#include "proto/sparsepool.grpc.pb.h"
#include "service/pool.h"

namespace sparsepool {

inline constexpr char kVersion[] = "0.1.0";

class PoolServiceImpl final : public v1::PoolService::Service {
 public:
  // `pool` and `clock` must outlive the service.
  PoolServiceImpl(Pool* pool, const Clock* clock);

  grpc::Status CreateSequence(grpc::ServerContext* context, const v1::CreateSequenceRequest* request,
                              v1::CreateSequenceResponse* response) override;
  grpc::Status ExtendSequence(grpc::ServerContext* context, const v1::ExtendSequenceRequest* request,
                              v1::ExtendSequenceResponse* response) override;
  grpc::Status GetLayout(grpc::ServerContext* context, const v1::GetLayoutRequest* request,
                         v1::GetLayoutResponse* response) override;
  grpc::Status ReleaseSequence(grpc::ServerContext* context,
                               const v1::ReleaseSequenceRequest* request,
                               v1::ReleaseSequenceResponse* response) override;
  grpc::Status ListSequences(grpc::ServerContext* context, const v1::ListSequencesRequest* request,
                             v1::ListSequencesResponse* response) override;
  grpc::Status KeepAlive(grpc::ServerContext* context, const v1::KeepAliveRequest* request,
                         v1::KeepAliveResponse* response) override;
  grpc::Status Stats(grpc::ServerContext* context, const v1::StatsRequest* request,
                     v1::StatsResponse* response) override;
  grpc::Status Health(grpc::ServerContext* context, const v1::HealthRequest* request,
                      v1::HealthResponse* response) override;

 private:
  Pool* const pool_;
  const Clock* const clock_;
  const absl::Time started_;
};

}  // namespace sparsepool

#endif  // SPARSEPOOL_SERVICE_POOL_SERVICE_H_
