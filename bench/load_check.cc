#include "bench/load_check.h"

#include <algorithm>
#include <map>
#include <numeric>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/crc32c.h"
#include "common/grpc_status.h"
#include "grpcpp/grpcpp.h"
#include "proto/sparsepool.grpc.pb.h"

namespace sparsepool::bench {
namespace {

// Tokens read per FetchTopK while checksumming a layer.
constexpr uint64_t kChunkTokens = 4096;

// Reads tokens [0, tokens) of every layer of `id` and returns each layer's checksum.
absl::StatusOr<std::vector<uint32_t>> LayerChecksums(Client& reader, uint64_t id, const LedgerSequence& line) {
  std::vector<uint32_t> crcs(line.layers, 0);
  std::vector<int32_t> indices;
  std::vector<std::byte> out;
  const SequenceId batch[] = {id};
  for (uint32_t layer = 0; layer < line.layers; ++layer) {
    for (uint64_t first = 0; first < line.committed_tokens; first += kChunkTokens) {
      const uint64_t n = std::min(kChunkTokens, line.committed_tokens - first);
      indices.resize(n);
      std::iota(indices.begin(), indices.end(), static_cast<int32_t>(first));
      out.resize(n * line.entry_bytes);
      if (absl::Status s = reader.FetchTopK(layer, batch, indices, absl::MakeSpan(out)); !s.ok()) return s;
      crcs[layer] = LayerChecksum(out, crcs[layer]);
    }
  }
  return crcs;
}

}  // namespace

std::string LoadCheckReport::Summary() const {
  std::string text = absl::StrCat(sequences_checked, " sequences byte-exact (", bytes_checked, " bytes), ", reclaimed,
                                  " of killed workers reclaimed, ", unledgered, " explained by creates in flight or lost");
  if (!problems.empty()) absl::StrAppend(&text, "; ", problems.size(), " PROBLEM(S): ", absl::StrJoin(problems, "; "));
  return text;
}

absl::StatusOr<LoadCheckReport> CheckPoolAgainstLedgers(const std::string& address, absl::Duration timeout,
                                                        Client& reader,
                                                        absl::Span<const LoadWorkerLedger> workers,
                                                        const std::string& operator_token) {
  auto stub = v1::PoolService::NewStub(grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
  v1::ListSequencesResponse listed;
  if (absl::Status s = CallWithDeadline(*stub, &v1::PoolService::Stub::ListSequences, "ListSequences", address,
                                        timeout, operator_token, v1::ListSequencesRequest(), &listed);
      !s.ok()) {
    return s;
  }
  std::map<std::string, const LoadWorkerLedger*> by_owner;
  for (const LoadWorkerLedger& w : workers) by_owner[w.ledger.client_id()] = &w;
  std::map<uint64_t, const v1::SequenceSummary*> in_pool;
  std::map<const LoadWorkerLedger*, uint64_t> unledgered_of;
  LoadCheckReport report;

  for (const v1::SequenceSummary& s : listed.sequences()) {
    in_pool[s.sequence_id()] = &s;
    auto owner = by_owner.find(s.owner());
    if (owner == by_owner.end()) continue;  // not a load worker's (a filler's, an operator's)
    const LoadWorkerLedger& w = *owner->second;
    auto line = w.ledger.sequences().find(s.sequence_id());
    if (line == w.ledger.sequences().end()) {
      // The pool holds a sequence of this worker that no line names: only a create
      // stopped before its answer was recorded, or one whose answer was lost, makes one.
      if (++unledgered_of[&w] > w.ledger.creates_in_flight() + w.ledger.lost_creates()) {
        report.problems.push_back(absl::StrCat("sequence ", s.sequence_id(), " of worker ", w.worker,
                                               " is live in the pool but in no line of its ledger"));
      } else {
        ++report.unledgered;
      }
      continue;
    }
    const LedgerSequence& want = line->second;
    if (s.layers() != want.layers || s.entry_bytes() != want.entry_bytes || s.tokens() < want.committed_tokens) {
      report.problems.push_back(absl::StrCat("sequence ", s.sequence_id(), " of worker ", w.worker, " has ",
                                             s.layers(), " layers of ", s.entry_bytes(), "-byte entries and ",
                                             s.tokens(), " tokens; its ledger says ", want.layers, ", ",
                                             want.entry_bytes, " and at least ", want.committed_tokens));
      continue;
    }
    absl::StatusOr<std::vector<uint32_t>> crcs = LayerChecksums(reader, s.sequence_id(), want);
    if (!crcs.ok() && absl::IsNotFound(crcs.status()) && (!w.alive || want.releasing)) {
      // Its lease ran out while it was being read, or the release it asked for landed.
      if (!w.alive) ++report.reclaimed;
      continue;
    }
    if (!crcs.ok()) {
      report.problems.push_back(absl::StrCat("sequence ", s.sequence_id(), " of worker ", w.worker,
                                             " cannot be read back: ", crcs.status().ToString()));
      continue;
    }
    for (uint32_t layer = 0; layer < want.layers; ++layer) {
      if ((*crcs)[layer] != want.layer_crc[layer]) {
        report.problems.push_back(absl::StrCat("sequence ", s.sequence_id(), " of worker ", w.worker, " layer ", layer,
                                               ": the ", want.committed_tokens,
                                               " acknowledged tokens differ from what was written"));
      }
    }
    ++report.sequences_checked;
    report.bytes_checked += want.committed_tokens * want.layers * want.entry_bytes;
  }

  // Lines the pool does not hold: released as asked, reclaimed after their worker was
  // killed, or lost.
  for (const LoadWorkerLedger& w : workers) {
    for (const auto& [id, line] : w.ledger.sequences()) {
      if (in_pool.count(id) > 0 || line.releasing) continue;
      if (!w.alive) {
        ++report.reclaimed;
      } else {
        report.problems.push_back(absl::StrCat("sequence ", id, " of worker ", w.worker, " (", line.committed_tokens,
                                               " tokens acknowledged) is gone from the pool"));
      }
    }
  }
  return report;
}

}  // namespace sparsepool::bench
