#include "common/layout.h"

#include "absl/strings/str_cat.h"

namespace sparsepool {

absl::Status ValidateLayout(const SequenceLayout& l) {
  const std::string who = absl::StrCat("layout of sequence ", l.sequence_id);
  if (l.layers == 0 || l.entry_bytes == 0 || l.page_tokens == 0) {
    return absl::DataLossError(absl::StrCat(who, " has zero layers, entry_bytes or page_tokens"));
  }
  if (l.entry_stride < l.entry_bytes) {
    return absl::DataLossError(absl::StrCat(who, ": entry_stride ", l.entry_stride,
                                            " is below entry_bytes ", l.entry_bytes));
  }
  const uint64_t pages_needed = (l.tokens + l.page_tokens - 1) / l.page_tokens;
  if (l.pages_per_layer < pages_needed) {
    return absl::DataLossError(absl::StrCat(who, ": ", l.pages_per_layer,
                                            " pages per layer cannot hold ", l.tokens, " tokens"));
  }
  if (l.page_offsets.size() != uint64_t{l.layers} * l.pages_per_layer) {
    return absl::DataLossError(absl::StrCat(who, ": ", l.page_offsets.size(),
                                            " page offsets for ", l.layers, " layers x ",
                                            l.pages_per_layer, " pages"));
  }
  const uint64_t page_bytes = l.PageBytes();
  for (uint64_t offset : l.page_offsets) {
    if (offset > l.region.size_bytes || l.region.size_bytes - offset < page_bytes) {
      return absl::DataLossError(absl::StrCat(who, ": page at offset ", offset, " of ",
                                              page_bytes, " bytes lies outside region ",
                                              l.region.path, " of ", l.region.size_bytes,
                                              " bytes"));
    }
  }
  return absl::OkStatus();
}

}  // namespace sparsepool
