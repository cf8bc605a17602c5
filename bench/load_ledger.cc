#include "bench/load_ledger.h"

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/crc32c.h"
#include "common/file_text.h"

namespace sparsepool::bench {
namespace {

constexpr absl::string_view kHeader = "sparsepool-load-ledger v1";

absl::Status Malformed(absl::string_view line, absl::string_view why) {
  return absl::DataLossError(absl::StrCat("load ledger: ", why, " in line \"", line, "\""));
}

}  // namespace

uint32_t LayerChecksum(absl::Span<const std::byte> entries, uint32_t crc) {
  return Crc32c(entries.data(), entries.size(), crc);
}

void LoadLedger::EndCreate(CreateOutcome outcome) {
  if (creates_in_flight_ > 0) --creates_in_flight_;
  if (outcome == CreateOutcome::kAnswerLost) ++lost_creates_;
}

void LoadLedger::Created(uint64_t id, uint32_t layers, uint32_t entry_bytes) {
  LedgerSequence& s = sequences_[id];
  s.layers = layers;
  s.entry_bytes = entry_bytes;
  s.committed_tokens = 0;
  s.layer_crc.assign(layers, 0);
  s.releasing = false;
}

absl::Status LoadLedger::Committed(uint64_t id, uint64_t n, absl::Span<const std::byte> entries) {
  auto it = sequences_.find(id);
  if (it == sequences_.end()) return absl::InvalidArgumentError(absl::StrCat("sequence ", id, " is not in the ledger"));
  LedgerSequence& s = it->second;
  const uint64_t layer_bytes = n * s.entry_bytes;
  if (entries.size() != layer_bytes * s.layers) {
    return absl::InvalidArgumentError(absl::StrCat("sequence ", id, ": ", entries.size(), " bytes committed, but ", n,
                                                   " tokens of ", s.layers, " layers take ", layer_bytes * s.layers));
  }
  for (uint32_t layer = 0; layer < s.layers; ++layer) {
    s.layer_crc[layer] = LayerChecksum(entries.subspan(layer * layer_bytes, layer_bytes), s.layer_crc[layer]);
  }
  s.committed_tokens += n;
  return absl::OkStatus();
}

void LoadLedger::Releasing(uint64_t id) {
  auto it = sequences_.find(id);
  if (it != sequences_.end()) it->second.releasing = true;
}

std::string LoadLedger::Serialize() const {
  std::string text = absl::StrCat(kHeader, "\nclient ", client_id_, "\ncreates_in_flight ", creates_in_flight_,
                                  "\nlost_creates ", lost_creates_, "\n");
  for (const auto& [id, s] : sequences_) {
    absl::StrAppend(&text, "seq ", id, " ", s.layers, " ", s.entry_bytes, " ", s.committed_tokens, " ",
                    s.releasing ? "releasing" : "live");
    for (uint32_t crc : s.layer_crc) absl::StrAppend(&text, " ", crc);
    text += "\n";
  }
  return text;
}

absl::StatusOr<LoadLedger> LoadLedger::Parse(absl::string_view text) {
  std::vector<absl::string_view> lines = absl::StrSplit(text, '\n', absl::SkipEmpty());
  if (lines.empty() || lines[0] != kHeader) {
    return absl::DataLossError(absl::StrCat("load ledger: the first line is not \"", kHeader, "\""));
  }
  LoadLedger ledger;
  for (size_t i = 1; i < lines.size(); ++i) {
    const absl::string_view line = lines[i];
    std::vector<absl::string_view> words = absl::StrSplit(line, ' ');
    if (words[0] == "client" && words.size() == 2) {
      ledger.client_id_ = std::string(words[1]);
    } else if (words[0] == "creates_in_flight" && words.size() == 2) {
      if (!absl::SimpleAtoi(words[1], &ledger.creates_in_flight_)) return Malformed(line, "a bad count");
    } else if (words[0] == "lost_creates" && words.size() == 2) {
      if (!absl::SimpleAtoi(words[1], &ledger.lost_creates_)) return Malformed(line, "a bad count");
    } else if (words[0] == "seq" && words.size() >= 6) {
      uint64_t id = 0;
      LedgerSequence s;
      if (!absl::SimpleAtoi(words[1], &id) || !absl::SimpleAtoi(words[2], &s.layers) ||
          !absl::SimpleAtoi(words[3], &s.entry_bytes) || !absl::SimpleAtoi(words[4], &s.committed_tokens)) {
        return Malformed(line, "a bad number");
      }
      if (words[5] != "live" && words[5] != "releasing") return Malformed(line, "an unknown state");
      s.releasing = words[5] == "releasing";
      if (words.size() != 6 + size_t{s.layers}) return Malformed(line, "a checksum count unlike the layers");
      for (size_t w = 6; w < words.size(); ++w) {
        uint32_t crc = 0;
        if (!absl::SimpleAtoi(words[w], &crc)) return Malformed(line, "a bad checksum");
        s.layer_crc.push_back(crc);
      }
      if (!ledger.sequences_.emplace(id, std::move(s)).second) return Malformed(line, "a sequence named twice");
    } else {
      return Malformed(line, "an unknown line");
    }
  }
  return ledger;
}

absl::Status LoadLedger::Save(const std::string& path) const {
  return WriteFileTextAtomically(path, Serialize());
}

absl::StatusOr<LoadLedger> LoadLedger::Load(const std::string& path) {
  absl::StatusOr<std::string> text = ReadFileText(path, "load ledger");
  if (!text.ok()) return text.status();
  return Parse(*text);
}

}  // namespace sparsepool::bench
