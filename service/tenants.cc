#include "service/tenants.h"

#include <openssl/crypto.h>
#include <openssl/sha.h>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/file_text.h"
#include "common/layout.h"
#include "common/units.h"

namespace sparsepool {
namespace {

absl::StatusOr<TokenHash> ParseHashHex(absl::string_view hex) {
  TokenHash hash{};
  if (hex.size() != 2 * hash.size()) {
    return absl::InvalidArgumentError(absl::StrCat("token_sha256 has ", hex.size(), " characters, not 64"));
  }
  for (size_t i = 0; i < hash.size(); ++i) {
    int byte = 0;
    for (char c : hex.substr(2 * i, 2)) {
      const int digit = absl::ascii_isdigit(c) ? c - '0' : (c >= 'a' && c <= 'f') ? c - 'a' + 10 : -1;
      if (digit < 0) return absl::InvalidArgumentError("token_sha256 is not lowercase hex");
      byte = byte * 16 + digit;
    }
    hash[i] = static_cast<uint8_t>(byte);
  }
  return hash;
}

absl::StatusOr<uint64_t> ParseCount(absl::string_view text) {
  uint64_t value = 0;
  if (!absl::SimpleAtoi(text, &value)) return absl::InvalidArgumentError(absl::StrCat("\"", text, "\" is not a count"));
  return value;
}

// One line's entry, or InvalidArgument saying what is wrong with it.
absl::StatusOr<Tenant> ParseEntry(const std::vector<absl::string_view>& words) {
  Tenant entry;
  if (words[0] != "tenant" && words[0] != "operator") {
    return absl::InvalidArgumentError(absl::StrCat("\"", words[0], "\" is neither tenant nor operator"));
  }
  entry.is_operator = words[0] == "operator";
  if (words.size() < 3) return absl::InvalidArgumentError("expected: KIND NAME token_sha256=HEX [quotas]");
  if (words[1].empty() || words[1].size() > kMaxNameBytes || words[1].find('=') != absl::string_view::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("name \"", words[1], "\" must be 1 to ", kMaxNameBytes, " bytes without '='"));
  }
  entry.name = std::string(words[1]);
  bool has_token = false;
  for (size_t i = 2; i < words.size(); ++i) {
    std::pair<absl::string_view, absl::string_view> kv = absl::StrSplit(words[i], absl::MaxSplits('=', 1));
    const auto& [key, value] = kv;
    if (key == "token_sha256") {
      auto hash = ParseHashHex(value);
      if (!hash.ok()) return hash.status();
      entry.token_sha256 = *hash;
      has_token = true;
    } else if (key == "max_bytes" && !entry.is_operator) {
      auto bytes = ParseByteSize(value);
      if (!bytes.ok()) return bytes.status();
      entry.max_bytes = *bytes;
    } else if ((key == "max_sequences" || key == "max_clients") && !entry.is_operator) {
      auto count = ParseCount(value);
      if (!count.ok()) return count.status();
      (key == "max_sequences" ? entry.max_sequences : entry.max_clients) = *count;
    } else {
      return absl::InvalidArgumentError(absl::StrCat("unknown key \"", key, "\" for ", words[0], " ", entry.name,
                                                     entry.is_operator ? " (operators have no quotas)" : ""));
    }
  }
  if (!has_token) return absl::InvalidArgumentError(absl::StrCat(words[0], " ", entry.name, " has no token_sha256"));
  return entry;
}

}  // namespace

TokenHash HashToken(absl::string_view token) {
  TokenHash hash{};
  SHA256(reinterpret_cast<const unsigned char*>(token.data()), token.size(), hash.data());
  return hash;
}

std::string TokenHashHex(absl::string_view token) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string hex;
  for (uint8_t byte : HashToken(token)) {
    hex.push_back(kDigits[byte >> 4]);
    hex.push_back(kDigits[byte & 15]);
  }
  return hex;
}

absl::StatusOr<TenantDirectory> TenantDirectory::Parse(absl::string_view text, absl::string_view source) {
  TenantDirectory directory;
  int line_number = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++line_number;
    line = absl::StripAsciiWhitespace(line.substr(0, line.find('#')));
    if (line.empty()) continue;
    const std::vector<absl::string_view> words = absl::StrSplit(line, absl::ByAnyChar(" \t"), absl::SkipEmpty());
    const auto where = [&](absl::string_view what) {
      return absl::InvalidArgumentError(absl::StrCat(source, ":", line_number, ": ", what));
    };
    auto entry = ParseEntry(words);
    if (!entry.ok()) return where(entry.status().message());
    for (const Tenant& other : directory.entries_) {
      if (other.name == entry->name) return where(absl::StrCat("the name ", entry->name, " is given twice"));
      if (other.token_sha256 == entry->token_sha256) {
        return where(absl::StrCat(entry->name, " has the token of ", other.name, ": each needs its own"));
      }
    }
    directory.entries_.push_back(*std::move(entry));
  }
  if (directory.entries_.empty()) {
    return absl::InvalidArgumentError(absl::StrCat(source, " names no tenant or operator"));
  }
  return directory;
}

absl::StatusOr<TenantDirectory> TenantDirectory::Load(const std::string& path) {
  auto text = ReadFileText(path, "the tenants file");
  if (!text.ok()) return text.status();
  return Parse(*text, path);
}

absl::StatusOr<const Tenant*> TenantDirectory::Authenticate(absl::string_view token) const {
  const TokenHash presented = HashToken(token);
  const Tenant* found = nullptr;
  for (const Tenant& entry : entries_) {
    // Every entry is compared whatever matched, each in constant time.
    if (CRYPTO_memcmp(presented.data(), entry.token_sha256.data(), presented.size()) == 0) found = &entry;
  }
  if (token.empty() || found == nullptr) {
    return absl::UnauthenticatedError("no tenant or operator has this token (send it as \"authorization: Bearer ...\")");
  }
  return found;
}

const Tenant* TenantDirectory::FindTenant(absl::string_view name) const {
  for (const Tenant& entry : entries_) {
    if (!entry.is_operator && entry.name == name) return &entry;
  }
  return nullptr;
}

}  // namespace sparsepool
