#include "bench/prefix_fetch.h"

#include <cstring>
#include <numeric>
#include <vector>

#include "absl/strings/str_cat.h"
#include "client/client_internal.h"

namespace sparsepool::bench {

absl::Status FetchThroughPrefix(Client& client, uint32_t layer, absl::Span<const SequenceId> batch,
                                absl::Span<const int32_t> indices, absl::Span<std::byte> out) {
  if (batch.empty()) return absl::OkStatus();
  if (indices.size() % batch.size() != 0) {
    return absl::InvalidArgumentError(
        absl::StrCat(indices.size(), " indices do not split into ", batch.size(), " rows of k each"));
  }
  const size_t k = indices.size() / batch.size();
  std::vector<std::byte> prefix;
  std::vector<int32_t> all;
  for (size_t row = 0; row < batch.size(); ++row) {
    auto layout = internal::CachedLayout(client, batch[row]);
    if (!layout.ok()) return layout.status();
    const uint32_t entry = (*layout)->entry_bytes;
    if (out.size() != batch.size() * k * entry) {
      return absl::InvalidArgumentError(absl::StrCat("output buffer of ", out.size(), " bytes, expected ",
                                                     batch.size() * k * entry));
    }
    const auto selected = indices.subspan(row * k, k);
    for (int32_t token : selected) {
      if (token < -1 || (token >= 0 && static_cast<uint64_t>(token) >= (*layout)->tokens)) {
        return absl::InvalidArgumentError(absl::StrCat("token index ", token, " at batch row ", row,
                                                       " is past the ", (*layout)->tokens,
                                                       " tokens written to sequence ", batch[row]));
      }
    }
    all.resize((*layout)->tokens);
    std::iota(all.begin(), all.end(), 0);
    prefix.resize(all.size() * entry);
    if (absl::Status s = client.FetchTopK(layer, batch.subspan(row, 1), all, absl::MakeSpan(prefix)); !s.ok()) {
      return s;
    }
    for (size_t i = 0; i < k; ++i) {
      if (selected[i] < 0) continue;
      std::memcpy(out.data() + (row * k + i) * entry, prefix.data() + size_t(selected[i]) * entry, entry);
    }
  }
  return absl::OkStatus();
}

}  // namespace sparsepool::bench
