#include "transport/data_plane.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace sparsepool {

absl::Status ValidateGather(const GatherBatch& batch) {
  const size_t rows = batch.sequences.size();
  if (rows == 0) {
    if (!batch.indices.empty()) {
      return absl::InvalidArgumentError(
          absl::StrCat(batch.indices.size(), " indices given for a batch of no sequences"));
    }
    return absl::OkStatus();
  }
  if (batch.indices.size() % rows != 0) {
    return absl::InvalidArgumentError(absl::StrCat(batch.indices.size(),
                                                   " indices do not split into ", rows,
                                                   " rows of k each"));
  }
  const size_t k = batch.indices.size() / rows;
  const uint32_t entry_bytes = batch.sequences[0]->entry_bytes;
  for (size_t row = 0; row < rows; ++row) {
    const SequenceLayout& seq = *batch.sequences[row];
    if (seq.entry_bytes != entry_bytes) {
      return absl::InvalidArgumentError(absl::StrCat(
          "sequence ", seq.sequence_id, " (batch row ", row, ") has entry_bytes ",
          seq.entry_bytes, " but row 0 has ", entry_bytes, "; a batch shares one entry size"));
    }
    if (batch.layer >= seq.layers) {
      return absl::InvalidArgumentError(absl::StrCat("layer ", batch.layer,
                                                     " is out of range for sequence ",
                                                     seq.sequence_id, ", which has ",
                                                     seq.layers, " layers"));
    }
    for (size_t i = 0; i < k; ++i) {
      const int32_t index = batch.indices[row * k + i];
      if (index < -1) {
        return absl::InvalidArgumentError(
            absl::StrCat("token index ", index, " at batch row ", row, ", position ", i,
                         " (sequence ", seq.sequence_id, ", layer ", batch.layer,
                         ") is below -1, the padding value"));
      }
      if (index >= 0 && static_cast<uint64_t>(index) >= seq.tokens) {
        return absl::InvalidArgumentError(
            absl::StrCat("token index ", index, " at batch row ", row, ", position ", i,
                         " is past the ", seq.tokens, " tokens written to sequence ",
                         seq.sequence_id, " (layer ", batch.layer, ")"));
      }
    }
  }
  const uint64_t expected = uint64_t{rows} * k * entry_bytes;
  if (batch.out.size() != expected) {
    return absl::InvalidArgumentError(absl::StrCat(
        "output buffer of ", batch.out.size(), " bytes, expected ", expected, " (", rows,
        " rows x ", k, " entries x ", entry_bytes, " bytes)"));
  }
  return absl::OkStatus();
}

absl::Status ValidateWrite(const WriteRange& range) {
  const SequenceLayout& seq = *range.sequence;
  if (range.layer >= seq.layers) {
    return absl::InvalidArgumentError(absl::StrCat("layer ", range.layer,
                                                   " is out of range for sequence ",
                                                   seq.sequence_id, ", which has ",
                                                   seq.layers, " layers"));
  }
  if (range.entries.size() % seq.entry_bytes != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat("write of ", range.entries.size(), " bytes to sequence ", seq.sequence_id,
                     " is not a whole number of ", seq.entry_bytes, "-byte entries"));
  }
  const uint64_t count = range.entries.size() / seq.entry_bytes;
  if (range.first_token > seq.tokens || count > seq.tokens - range.first_token) {
    return absl::InvalidArgumentError(absl::StrCat(
        "write of tokens [", range.first_token, ", ", range.first_token + count,
        ") is past the ", seq.tokens, " tokens of sequence ", seq.sequence_id,
        " (layer ", range.layer, "); extend the sequence first"));
  }
  return absl::OkStatus();
}

absl::Status DataPlane::Gather(const GatherBatch& batch) {
  absl::Status valid = ValidateGather(batch);
  if (!valid.ok()) return valid;
  return GatherValidated(batch);
}

absl::Status DataPlane::Write(const WriteRange& range) {
  if (range.sequence == nullptr) return absl::InvalidArgumentError("write names no sequence");
  absl::Status valid = ValidateWrite(range);
  if (!valid.ok()) return valid;
  // In pieces of at most kWriteChunkBytes: each transport checks before and after a
  // piece that the sequence is still live, so a release racing a long prefill write
  // (gigabytes) can only meet the piece in flight, not the rest.
  const uint64_t entry = range.sequence->entry_bytes;
  const uint64_t tokens_per_chunk = std::max<uint64_t>(1, kWriteChunkBytes / entry);
  const uint64_t count = range.entries.size() / entry;
  for (uint64_t done = 0; done < count; done += tokens_per_chunk) {
    WriteRange piece = range;
    piece.first_token = range.first_token + done;
    piece.entries = range.entries.subspan(done * entry, std::min(tokens_per_chunk, count - done) * entry);
    ReleaseFence::Ticket in_flight;
    if (fence_ != nullptr) {
      absl::StatusOr<ReleaseFence::Ticket> entered = fence_->TryEnter();
      if (!entered.ok()) return entered.status();
      in_flight = *std::move(entered);
    }
    if (absl::Status s = WriteValidated(piece); !s.ok()) return s;
  }
  return absl::OkStatus();
}

}  // namespace sparsepool
