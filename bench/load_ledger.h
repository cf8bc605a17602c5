// What a sparsepool-load worker has committed to the pool, kept so that a check after
// a fault can tell lost or mixed bytes from the ordinary churn of requests.
//
// For every sequence the worker created and has not finished releasing: the number of
// tokens whose entries the pool acknowledged in every layer (WriteEntries or WriteStep
// returned OK), and per layer a CRC-32C over those entries in token order. The worker
// saves the ledger to a file after every change, atomically replaced, and always
// records an intention before acting on it (a create before the call, a release before
// the call), so that a worker killed or stopped at any instant leaves a ledger that
// never claims more than the pool was told, and explains everything the pool may hold
// of it.
#ifndef SPARSEPOOL_BENCH_LOAD_LEDGER_H_
#define SPARSEPOOL_BENCH_LOAD_LEDGER_H_

#include <cstddef>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"

namespace sparsepool::bench {

struct LedgerSequence {
  uint32_t layers = 0;
  uint32_t entry_bytes = 0;
  uint64_t committed_tokens = 0;
  std::vector<uint32_t> layer_crc;  // [layers], over tokens [0, committed_tokens)
  bool releasing = false;           // a release was asked for (it may have happened)
};

class LoadLedger {
 public:
  LoadLedger() = default;
  explicit LoadLedger(std::string client_id) : client_id_(std::move(client_id)) {}

  // The client id the worker's sequences are owned by (the daemon's lease name).
  const std::string& client_id() const { return client_id_; }

  // Before a CreateSequence call, and after it: a worker stopped in between may have
  // left a sequence in the pool that no line names. A call that failed without a
  // refusal (the daemon gone, the deadline passed) may have lost its answer after the
  // daemon made the sequence, which then belongs to this worker with no line of its
  // own (a lost create).
  enum class CreateOutcome { kCreated, kRefused, kAnswerLost };
  void BeginCreate() { ++creates_in_flight_; }
  void EndCreate(CreateOutcome outcome);
  uint32_t creates_in_flight() const { return creates_in_flight_; }
  uint64_t lost_creates() const { return lost_creates_; }

  // A sequence the pool made for this worker, nothing committed yet.
  void Created(uint64_t id, uint32_t layers, uint32_t entry_bytes);
  // Tokens [committed, committed + n) of `id` acknowledged by the pool in every layer;
  // `entries` is [layers][n][entry_bytes]. InvalidArgument when the sizes disagree or
  // the id is not in the ledger.
  absl::Status Committed(uint64_t id, uint64_t n, absl::Span<const std::byte> entries);
  // Before a ReleaseSequence call; after it succeeds, Released drops the line.
  void Releasing(uint64_t id);
  void Released(uint64_t id) { sequences_.erase(id); }

  const std::map<uint64_t, LedgerSequence>& sequences() const { return sequences_; }

  std::string Serialize() const;
  static absl::StatusOr<LoadLedger> Parse(absl::string_view text);

  // Serialize to `path` through a temporary file renamed over it: a reader, or a kill,
  // sees the old ledger or the new one, never half of one.
  absl::Status Save(const std::string& path) const;
  static absl::StatusOr<LoadLedger> Load(const std::string& path);

 private:
  std::string client_id_;
  uint32_t creates_in_flight_ = 0;
  uint64_t lost_creates_ = 0;
  std::map<uint64_t, LedgerSequence> sequences_;
};

// The CRC-32C a ledger keeps for one layer: entries of tokens [0, n) in token order,
// each entry_bytes long, back to back in `entries`.
uint32_t LayerChecksum(absl::Span<const std::byte> entries, uint32_t crc = 0);

}  // namespace sparsepool::bench

#endif  // SPARSEPOOL_BENCH_LOAD_LEDGER_H_
