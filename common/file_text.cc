#include "common/file_text.h"

#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"

namespace sparsepool {

absl::StatusOr<std::string> ReadFileText(const std::string& path, absl::string_view what) {
  std::ifstream file(path);
  if (!file) return absl::NotFoundError(absl::StrCat("cannot read ", what, " ", path));
  std::stringstream text;
  text << file.rdbuf();
  if (file.bad()) return absl::NotFoundError(absl::StrCat("cannot read ", what, " ", path));
  return text.str();
}

}  // namespace sparsepool
