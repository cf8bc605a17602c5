// Sequences of one written layer whose entries are bench::FillEntry's pattern, and a
// batched fetch that checks every delivered entry against it: what the cluster tests
// write through one path and read back through another.
#ifndef SPARSEPOOL_TESTS_PATTERN_SEQUENCES_H_
#define SPARSEPOOL_TESTS_PATTERN_SEQUENCES_H_

#include <cstring>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/str_cat.h"
#include "bench/entry_pattern.h"
#include "client/sparsepool_client.h"

namespace sparsepool::testing {

inline constexpr uint32_t kPatternEntryBytes = 656;

// A sequence of `tokens` tokens and one layer, layer 0 written with seed `seed`.
inline absl::StatusOr<SequenceId> CreatePatterned(Client& client, uint64_t seed, uint64_t tokens) {
  SequenceSpec spec;
  spec.layers = 1;
  spec.entry_bytes = kPatternEntryBytes;
  spec.tokens = tokens;
  auto id = client.CreateSequence(spec);
  if (!id.ok()) return id.status();
  std::vector<std::byte> entries(tokens * kPatternEntryBytes);
  for (uint64_t t = 0; t < tokens; ++t) {
    bench::FillEntry(seed, *id, 0, t, absl::MakeSpan(entries).subspan(t * kPatternEntryBytes, kPatternEntryBytes));
  }
  if (absl::Status s = client.WriteEntries(*id, 0, 0, entries); !s.ok()) return s;
  return *id;
}

// One FetchTopK of `tokens` (the same selection for every row) from each of `batch`,
// every entry compared with the pattern.
inline absl::Status FetchPatterned(Client& client, uint64_t seed, const std::vector<SequenceId>& batch,
                                   const std::vector<int32_t>& tokens) {
  std::vector<int32_t> indices;
  for (size_t i = 0; i < batch.size(); ++i) indices.insert(indices.end(), tokens.begin(), tokens.end());
  std::vector<std::byte> out(indices.size() * kPatternEntryBytes), expected(kPatternEntryBytes);
  if (absl::Status s = client.FetchTopK(0, batch, indices, absl::MakeSpan(out)); !s.ok()) return s;
  for (size_t i = 0; i < indices.size(); ++i) {
    const SequenceId id = batch[i / tokens.size()];
    bench::FillEntry(seed, id, 0, indices[i], absl::MakeSpan(expected));
    if (std::memcmp(out.data() + i * kPatternEntryBytes, expected.data(), kPatternEntryBytes) != 0) {
      return absl::DataLossError(absl::StrCat("sequence ", id, " token ", indices[i], " differs from what was written"));
    }
  }
  return absl::OkStatus();
}

}  // namespace sparsepool::testing

#endif  // SPARSEPOOL_TESTS_PATTERN_SEQUENCES_H_
