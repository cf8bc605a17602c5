#include "bench/prefix_fetch.h"

#include <algorithm>
#include <cstring>
#include <memory>
#include <numeric>
#include <vector>

#include "absl/strings/str_cat.h"
#include "client/client_internal.h"

namespace sparsepool::bench {

absl::Status FetchThroughPrefix(Client& client, uint32_t layer, absl::Span<const SequenceId> batch,
                                absl::Span<const int32_t> indices, absl::Span<std::byte> out) {
  if (batch.empty()) {
    if (indices.empty()) return absl::OkStatus();
    return absl::InvalidArgumentError(absl::StrCat(indices.size(), " indices given for an empty batch"));
  }
  if (indices.size() % batch.size() != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(indices.size(), " indices do not split into ", batch.size(), " rows of k each"));
  }
  const size_t k = indices.size() / batch.size();
  // Every row is checked before anything is fetched, as FetchTopK does; a row whose
  // selection reaches past the cached layout is asked of the daemon (it may have grown).
  std::vector<std::shared_ptr<const SequenceLayout>> layouts(batch.size());
  for (size_t row = 0; row < batch.size(); ++row) {
    const auto selected = indices.subspan(row * k, k);
    const int32_t highest = selected.empty() ? -1 : *std::max_element(selected.begin(), selected.end());
    auto layout = internal::CachedLayout(client, batch[row]);
    if (layout.ok() && highest >= 0 && static_cast<uint64_t>(highest) >= (*layout)->tokens) {
      if (auto fresh = internal::Layout(client, batch[row]); !fresh.ok()) return fresh.status();
      layout = internal::CachedLayout(client, batch[row]);
    }
    if (!layout.ok()) return layout.status();
    const uint32_t entry = (*layout)->entry_bytes;
    if (out.size() != batch.size() * k * entry) {
      return absl::InvalidArgumentError(absl::StrCat("output buffer of ", out.size(), " bytes, expected ",
                                                     batch.size() * k * entry));
    }
    for (int32_t token : selected) {
      if (token < -1 || (token >= 0 && static_cast<uint64_t>(token) >= (*layout)->tokens)) {
        return absl::InvalidArgumentError(absl::StrCat("token index ", token, " at batch row ", row,
                                                       " is past the ", (*layout)->tokens,
                                                       " tokens of sequence ", batch[row]));
      }
    }
    layouts[row] = *std::move(layout);
  }
  std::vector<std::byte> prefix;
  std::vector<int32_t> all;
  for (size_t row = 0; row < batch.size(); ++row) {
    const uint32_t entry = layouts[row]->entry_bytes;
    all.resize(layouts[row]->tokens);
    std::iota(all.begin(), all.end(), 0);
    prefix.resize(all.size() * entry);
    if (absl::Status s = client.FetchTopK(layer, batch.subspan(row, 1), all, absl::MakeSpan(prefix)); !s.ok()) {
      return s;
    }
    const auto selected = indices.subspan(row * k, k);
    for (size_t i = 0; i < k; ++i) {
      if (selected[i] < 0) continue;
      std::memcpy(out.data() + (row * k + i) * entry, prefix.data() + size_t(selected[i]) * entry, entry);
    }
  }
  return absl::OkStatus();
}

absl::Status FetchTokenRange(Client& client, uint32_t layer, absl::Span<const SequenceId> batch, uint64_t first,
                             uint64_t count, absl::Span<std::byte> out) {
  std::vector<int32_t> indices(batch.size() * count);
  for (size_t row = 0; row < batch.size(); ++row) {
    std::iota(indices.begin() + row * count, indices.begin() + (row + 1) * count, static_cast<int32_t>(first));
  }
  return client.FetchTopK(layer, batch, indices, out);
}

}  // namespace sparsepool::bench
