// Top-k traces: the selections of every layer at every decode step of one request, as
// generated here (GenerateTrace) or captured from a real inference engine, in a
// versioned file format (docs/trace_format.md) so that captured selections can be
// replayed against the pool.
#ifndef SPARSEPOOL_BENCH_TRACE_FILE_H_
#define SPARSEPOOL_BENCH_TRACE_FILE_H_

#include <cstdint>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace sparsepool::bench {

struct Trace {
  uint32_t layers = 0;
  uint32_t k = 0;
  std::vector<uint64_t> context;          // [steps]: tokens in the prefix at each step
  std::vector<int32_t> selections;        // [steps][layers][k]; -1 = padding

  size_t steps() const { return context.size(); }
  const int32_t* Selection(size_t step, uint32_t layer) const {
    return selections.data() + (step * layers + layer) * k;
  }
};

struct TraceParams {
  uint32_t layers = 61;
  uint32_t k = 2048;
  uint64_t context = 32768;  // tokens at the first step
  uint32_t steps = 64;
  uint32_t growth = 1;       // tokens appended per step (one per decode step)
  double overlap = 0.8;   // of a layer's top-k, the share it had at the previous step
  uint32_t sinks = 4;     // first tokens, selected at every step
  uint32_t window = 128;  // last tokens, selected at every step
  double skew = 0.9;      // how strongly replacements favour a few recurring tokens
  uint64_t seed = 1;      // each layer draws from its own stream: layers differ
};

Trace GenerateTrace(const TraceParams& params);

// Version 1 of the format; see docs/trace_format.md.
std::string EncodeTrace(const Trace& trace);
// Checks everything (magic, version, sizes, checksum, every index in [-1, context))
// and says what is wrong, naming the step and layer where it applies.
absl::StatusOr<Trace> DecodeTrace(absl::string_view bytes);

absl::Status WriteTraceFile(const Trace& trace, const std::string& path);
absl::StatusOr<Trace> ReadTraceFile(const std::string& path);

}  // namespace sparsepool::bench

#endif  // SPARSEPOOL_BENCH_TRACE_FILE_H_
