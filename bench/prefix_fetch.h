// The baseline of pools built for dense attention, for comparisons: every entry of the
// layer for each row crosses the link (a fetch of the row's whole prefix through the
// client), then the selected entries are picked locally. Same arguments and results as
// Client::FetchTopK; not part of the client library.
#ifndef SPARSEPOOL_BENCH_PREFIX_FETCH_H_
#define SPARSEPOOL_BENCH_PREFIX_FETCH_H_

#include <cstddef>
#include <cstdint>

#include "absl/status/status.h"
#include "absl/types/span.h"
#include "client/sparsepool_client.h"

namespace sparsepool::bench {

absl::Status FetchThroughPrefix(Client& client, uint32_t layer, absl::Span<const SequenceId> batch,
                                absl::Span<const int32_t> indices, absl::Span<std::byte> out);

// Tokens [first, first + count) of `layer` of every row of `batch`, into `out`
// ([rows][count][entry bytes]): a contiguous range, which the client reads in page-sized
// pieces. What the pulls of whole prefixes are made of.
absl::Status FetchTokenRange(Client& client, uint32_t layer, absl::Span<const SequenceId> batch, uint64_t first,
                             uint64_t count, absl::Span<std::byte> out);

}  // namespace sparsepool::bench

#endif  // SPARSEPOOL_BENCH_PREFIX_FETCH_H_
