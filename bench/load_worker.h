// One sparsepool-load decode worker (a process of its own): a client, its lease and
// `requests` requests, stepping as an engine does (append every request's new token
// in every layer with one WriteStep, then fetch every layer's top-k for the batch) and
// replacing its oldest request every `churn` steps.
//
// It rides out faults: a step, join or release that fails with Unavailable,
// DeadlineExceeded (the daemon gone or restarting) or ResourceExhausted (the pool full)
// is counted, with how long the failing call took, and retried until it succeeds or
// `recover_seconds` pass; any other error, or a fetched entry unlike what was written,
// ends the worker with that error. On the GPU path a row that leaves the decode
// session's step for one of those reasons (its room could not be reserved) is counted
// the same way and joins again after the step; the rows that stepped are committed.
// Everything acknowledged is kept in its ledger (bench/load_ledger.h) for the parent's
// checks.
#ifndef SPARSEPOOL_BENCH_LOAD_WORKER_H_
#define SPARSEPOOL_BENCH_LOAD_WORKER_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/time/time.h"

namespace sparsepool::bench {

// Every entry a load worker writes and fetches: DeepSeek-V3.2's FP8 latent entry.
inline constexpr uint32_t kLoadEntryBytes = 656;

struct LoadWorkerOptions {
  int index = 0;
  std::string address;
  std::string transport = "cxl";
  // "cpu": WriteStep and FetchTopK, the client's copies; "gpu": a decode session
  // (client/decode_session.h), every step one captured CUDA graph, entries gathered
  // into HBM (transport cxl). cache_slots > 0 adds the GPU residency cache.
  std::string path = "cpu";
  uint32_t cache_slots = 0;
  // Tokens reserved ahead of each request's need (the CPU path's client, the GPU
  // path's session); 0: their defaults.
  uint64_t reserve_tokens = 0;
  // For a daemon that serves tenants: the tenant's name (for the report) and the file
  // that holds its token (a file, not the token: command lines are visible to all).
  std::string tenant;
  std::string token_file;
  double seconds = 10;
  int requests = 4;
  uint64_t context = 8192;
  uint32_t layers = 4;
  uint32_t k = 2048;
  int churn = 16;
  // Every this many steps the worker replaces its client (releases its requests, closes
  // it, connects a new one under a new id and takes new requests); 0: never.
  int client_churn = 0;
  absl::Duration rpc_timeout = absl::Seconds(10);
  // The client's ClientOptions::fetch_bytes_per_second (its tenant's share, or with a
  // fetch_pacer_file the tenant's whole rate), fetch_burst and fetch_pacer_file.
  // 0: unpaced.
  uint64_t fetch_bytes_per_second = 0;
  absl::Duration fetch_burst = absl::Milliseconds(1);
  std::string fetch_pacer_file;
  double recover_seconds = 30;
  // The run's directory (RunDirectory): the worker writes its progress, ledger and
  // result in its own LoadWorkerDir(dir, index), and looks here for the parent's stop
  // file.
  std::string dir;
};

// Files a worker shares with its parent, in a directory of the worker's own under `dir`
// (the worker makes it): a file is replaced by a rename, which holds its directory's
// lock, and a worker that shared one with others would wait for theirs: with one
// directory for all, a quiet tenant's worker took 1.63 ms a step saving its ledger
// beside 31 flooding workers on the device host (0.03 alone).
std::string LoadWorkerDir(const std::string& dir, int worker);
std::string LoadWorkerFile(const std::string& dir, int worker, const char* kind);
std::string LoadStopFile(const std::string& dir);

// The worker's exit code: 0 when it ran its time (or was told to stop), 1 on an error.
int RunLoadWorker(const LoadWorkerOptions& options);

// What a worker reports while it runs (its progress file) and at its end (its result
// file).
struct LoadWorkerProgress {
  uint64_t steps = 0;
  uint64_t errors = 0;         // failed attempts ridden out
  double longest_error_ms = 0;  // the longest a failing call took to fail
};
// Where a worker's time went, seconds over its run: what the step's clock leaves out
// (the indexer's selection, the check, the ledger, requests joining and leaving) beside
// the steps themselves, so that a slow tenant's time can be placed.
struct LoadWorkerTime {
  double select_s = 0;   // the top-k selection (SelectTopK)
  double step_s = 0;     // the timed steps
  double check_s = 0;    // reading entries back and comparing them
  double ledger_s = 0;   // saving the ledger
  double create_s = 0;   // CreateSequence calls (the daemon's turns for creates included)
  double prefill_s = 0;  // a joining request's prompt: made, written, on the GPU path joined to the session
  double release_s = 0;  // ReleaseSequence calls
  double other_s = 0;    // the rest: connecting, replacing clients, progress, pauses between retries
};

struct LoadWorkerResult {
  LoadWorkerProgress progress;
  uint64_t entries = 0;  // fetched
  uint64_t checked = 0;  // compared with what was written
  uint64_t rejoined = 0;  // GPU path: requests that left a step for want of room and joined again
  double elapsed_s = 0;
  std::vector<double> step_us;  // every completed step's time
  // Each step's part spent waiting for its fetch (the CPU path's FetchTopK calls, the
  // GPU path's graph from launch to the stream's end), step_us's order; the rest of the
  // step is the append (and on the GPU path the step's preparation).
  std::vector<double> wait_us;
  LoadWorkerTime time;
};

// False when the worker has not written one yet (or it cannot be read).
bool ReadLoadWorkerProgress(const std::string& path, LoadWorkerProgress* out);
// Workers 0 .. workers-1 of `dir` together: steps and errors summed, the longest
// failing call of any (workers that have written no progress yet count nothing).
LoadWorkerProgress TotalLoadProgress(const std::string& dir, int workers);
absl::StatusOr<LoadWorkerResult> ReadLoadWorkerResult(const std::string& path);

// Workers' results summed: entries, errors and phases added, steps and waits joined,
// the run as long as its longest worker's.
void MergeLoadResult(const LoadWorkerResult& r, LoadWorkerResult& into);

}  // namespace sparsepool::bench

#endif  // SPARSEPOOL_BENCH_LOAD_WORKER_H_
