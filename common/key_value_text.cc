#include "common/key_value_text.h"

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"

namespace sparsepool {

absl::Status ForEachKeyValueLine(
    absl::string_view text, absl::string_view source,
    absl::FunctionRef<absl::Status(absl::string_view key, absl::string_view value)> apply) {
  int line_number = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++line_number;
    line = absl::StripAsciiWhitespace(line.substr(0, line.find('#')));
    if (line.empty()) continue;
    const size_t eq = line.find('=');
    if (eq == absl::string_view::npos) {
      return absl::InvalidArgumentError(
          absl::StrCat(source, ":", line_number, ": expected KEY = VALUE, got \"", line, "\""));
    }
    absl::Status applied =
        apply(absl::StripAsciiWhitespace(line.substr(0, eq)), absl::StripAsciiWhitespace(line.substr(eq + 1)));
    if (!applied.ok()) {
      return absl::InvalidArgumentError(absl::StrCat(source, ":", line_number, ": ", applied.message()));
    }
  }
  return absl::OkStatus();
}

}  // namespace sparsepool
