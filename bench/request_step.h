// What the request-level strategies share (bench/request_strategies.h): the step's
// write of its new entries through the decode worker's client, and the step's shape
// check.
#ifndef SPARSEPOOL_BENCH_REQUEST_STEP_H_
#define SPARSEPOOL_BENCH_REQUEST_STEP_H_

#include <cstddef>
#include <cstdint>
#include <vector>

#include "absl/status/status.h"
#include "absl/types/span.h"
#include "bench/request_strategies.h"
#include "client/sparsepool_client.h"

namespace sparsepool::bench {

// Client::WriteStep of the rows' new tokens (new_entries [rows][stored layers][entry]);
// `ids` and `positions` are scratch the caller keeps between steps.
absl::Status WriteStepThroughClient(Client& client, absl::Span<const StepRow> rows,
                                    absl::Span<const std::byte> new_entries, std::vector<SequenceId>& ids,
                                    std::vector<uint64_t>& positions);

// InvalidArgument unless the step's rows, entries and indices agree with `shape`.
absl::Status CheckStepShape(const RequestShape& shape, absl::Span<const StepRow> rows,
                            absl::Span<const std::byte> new_entries, absl::Span<const int32_t> indices);

}  // namespace sparsepool::bench

#endif  // SPARSEPOOL_BENCH_REQUEST_STEP_H_
