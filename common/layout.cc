#include "common/layout.h"

#include <array>
#include <set>

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
  if (l.stripe_regions.size() >= l.layers) {
    return absl::DataLossError(absl::StrCat(who, ": ", l.stripes(), " stripes for ", l.layers,
                                            " layers (a stripe holds at least one layer)"));
  }
  // Two stripes in one region would be no striping at all: a forged or corrupt layout.
  std::set<std::array<uint8_t, 16>> uuids = {l.region.uuid};
  for (size_t s = 0; s < l.stripe_regions.size(); ++s) {
    const RegionRef& stripe = l.stripe_regions[s];
    if (!uuids.insert(stripe.uuid).second) {
      return absl::DataLossError(absl::StrCat(who, ": stripe ", s + 1, " names region ", stripe.path,
                                              " a second time"));
    }
  }
  const uint64_t page_bytes = l.PageBytes();
  for (uint32_t layer = 0; layer < l.layers; ++layer) {
    const RegionRef& region = l.LayerRegion(layer);
    for (uint64_t page = 0; page < l.pages_per_layer; ++page) {
      const uint64_t offset = l.page_offsets[uint64_t{layer} * l.pages_per_layer + page];
      if (offset > region.size_bytes || region.size_bytes - offset < page_bytes) {
        return absl::DataLossError(absl::StrCat(who, ": page at offset ", offset, " of ", page_bytes,
                                                " bytes (layer ", layer, ") lies outside region ", region.path,
                                                " of ", region.size_bytes, " bytes"));
      }
    }
  }
  return absl::OkStatus();
}

}  // namespace sparsepool
