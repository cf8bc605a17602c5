#include "bench/model_geometry.h"

#include <fstream>
#include <sstream>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "common/key_value_text.h"

namespace sparsepool::bench {
namespace {

absl::Status ParseCount(absl::string_view key, absl::string_view value, uint32_t max, uint32_t& out) {
  uint32_t parsed = 0;
  if (!absl::SimpleAtoi(value, &parsed) || parsed == 0 || parsed > max) {
    return absl::InvalidArgumentError(
        absl::StrCat(key, " = \"", value, "\" is not a whole number in [1, ", max, "]"));
  }
  out = parsed;
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<ModelGeometry> ParseModelGeometry(absl::string_view text, absl::string_view source) {
  ModelGeometry model;
  absl::Status parsed = ForEachKeyValueLine(text, source, [&](absl::string_view key, absl::string_view value) {
    if (key == "name") {
      if (value.empty()) return absl::InvalidArgumentError("name is empty");
      model.name = std::string(value);
      return absl::OkStatus();
    }
    if (key == "layers") return ParseCount(key, value, 1024, model.layers);
    if (key == "entry_bytes") return ParseCount(key, value, 1 << 20, model.entry_bytes);
    if (key == "index_key_bytes") return ParseCount(key, value, 1 << 20, model.index_key_bytes);
    if (key == "top_k") return ParseCount(key, value, 1 << 20, model.top_k);
    if (key == "page_tokens") return ParseCount(key, value, 1 << 16, model.page_tokens);
    return absl::InvalidArgumentError(absl::StrCat(
        "unknown key \"", key, "\" (name, layers, entry_bytes, index_key_bytes, top_k, page_tokens)"));
  });
  if (!parsed.ok()) return parsed;
  return model;
}

absl::StatusOr<ModelGeometry> ReadModelGeometry(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read model file ", path));
  std::stringstream text;
  text << in.rdbuf();
  return ParseModelGeometry(text.str(), path);
}

}  // namespace sparsepool::bench
