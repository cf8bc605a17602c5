#include "bench/trace_file.h"

#include <cstring>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "bench/overlap_trace.h"
#include "common/crc32c.h"

namespace sparsepool::bench {
namespace {

constexpr char kMagic[8] = {'S', 'P', 'T', 'R', 'A', 'C', 'E', '\0'};
constexpr uint32_t kVersion = 1;
constexpr size_t kHeaderBytes = 8 + 4 * 4;  // magic, version, layers, k, steps
constexpr uint32_t kMaxLayers = 1024, kMaxK = 1 << 20;

template <typename T>
void Put(std::string& out, T value) {
  out.append(reinterpret_cast<const char*>(&value), sizeof(value));
}

template <typename T>
T Get(absl::string_view bytes, size_t offset) {
  T value;
  std::memcpy(&value, bytes.data() + offset, sizeof(value));
  return value;
}

}  // namespace

Trace GenerateTrace(const TraceParams& p) {
  Trace trace;
  trace.layers = p.layers;
  trace.k = p.k;
  for (uint32_t step = 0; step < p.steps; ++step) trace.context.push_back(p.context + uint64_t{step} * p.growth);
  trace.selections.resize(uint64_t{p.steps} * p.layers * p.k);
  const uint64_t last_context = trace.context.empty() ? p.context : trace.context.back();
  for (uint32_t layer = 0; layer < p.layers; ++layer) {
    OverlapTrace stream(static_cast<uint32_t>(last_context), p.k, p.overlap, p.seed * 1000003 + layer, p.sinks,
                        p.window, p.skew);
    for (uint32_t step = 0; step < p.steps; ++step) {
      const std::vector<int32_t>& selected = stream.Next(static_cast<uint32_t>(trace.context[step]));
      int32_t* out = trace.selections.data() + (uint64_t{step} * p.layers + layer) * p.k;
      std::fill(out, out + p.k, -1);
      std::copy(selected.begin(), selected.end(), out);
    }
  }
  return trace;
}

std::string EncodeTrace(const Trace& trace) {
  std::string out(kMagic, sizeof(kMagic));
  Put<uint32_t>(out, kVersion);
  Put<uint32_t>(out, trace.layers);
  Put<uint32_t>(out, trace.k);
  Put<uint32_t>(out, static_cast<uint32_t>(trace.steps()));
  for (size_t step = 0; step < trace.steps(); ++step) {
    Put<uint64_t>(out, trace.context[step]);
    out.append(reinterpret_cast<const char*>(trace.Selection(step, 0)),
               size_t{trace.layers} * trace.k * sizeof(int32_t));
  }
  Put<uint32_t>(out, Crc32c(out.data(), out.size()));
  return out;
}

absl::StatusOr<Trace> DecodeTrace(absl::string_view bytes) {
  if (bytes.size() < kHeaderBytes + 4 || std::memcmp(bytes.data(), kMagic, sizeof(kMagic)) != 0) {
    return absl::InvalidArgumentError("not a sparsepool trace (magic SPTRACE missing)");
  }
  const uint32_t version = Get<uint32_t>(bytes, 8);
  if (version != kVersion) {
    return absl::InvalidArgumentError(absl::StrCat("trace format version ", version,
                                                   " is not supported (this build reads ", kVersion, ")"));
  }
  Trace trace;
  trace.layers = Get<uint32_t>(bytes, 12);
  trace.k = Get<uint32_t>(bytes, 16);
  const uint32_t steps = Get<uint32_t>(bytes, 20);
  if (trace.layers == 0 || trace.layers > kMaxLayers || trace.k == 0 || trace.k > kMaxK) {
    return absl::InvalidArgumentError(absl::StrCat("trace has ", trace.layers, " layers and k ", trace.k,
                                                   "; expected 1-", kMaxLayers, " layers and k 1-", kMaxK));
  }
  const uint64_t step_bytes = 8 + uint64_t{trace.layers} * trace.k * 4;
  const uint64_t expected = kHeaderBytes + steps * step_bytes + 4;
  if (bytes.size() != expected) {
    return absl::InvalidArgumentError(absl::StrCat("trace of ", bytes.size(), " bytes, but its header (",
                                                   steps, " steps x ", trace.layers, " layers x k ", trace.k,
                                                   ") needs ", expected, "; truncated or padded"));
  }
  const uint32_t stored = Get<uint32_t>(bytes, bytes.size() - 4);
  if (stored != Crc32c(bytes.data(), bytes.size() - 4)) {
    return absl::DataLossError("trace checksum mismatch: the file is corrupted");
  }
  trace.context.resize(steps);
  trace.selections.resize(uint64_t{steps} * trace.layers * trace.k);
  for (uint32_t step = 0; step < steps; ++step) {
    const size_t at = kHeaderBytes + step * step_bytes;
    trace.context[step] = Get<uint64_t>(bytes, at);
    std::memcpy(trace.selections.data() + uint64_t{step} * trace.layers * trace.k, bytes.data() + at + 8,
                step_bytes - 8);
    for (uint32_t layer = 0; layer < trace.layers; ++layer) {
      const int32_t* s = trace.Selection(step, layer);
      for (uint32_t i = 0; i < trace.k; ++i) {
        if (s[i] < -1 || (s[i] >= 0 && uint64_t(s[i]) >= trace.context[step])) {
          return absl::InvalidArgumentError(absl::StrCat("step ", step, ", layer ", layer, ", position ", i,
                                                         ": token ", s[i], " is outside the context of ",
                                                         trace.context[step], " tokens"));
        }
      }
    }
  }
  return trace;
}

absl::Status WriteTraceFile(const Trace& trace, const std::string& path) {
  std::ofstream out(path, std::ios::binary);
  const std::string bytes = EncodeTrace(trace);
  out.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  if (!out) return absl::InternalError(absl::StrCat("cannot write trace ", path));
  return absl::OkStatus();
}

absl::StatusOr<Trace> ReadTraceFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read trace ", path));
  std::stringstream bytes;
  bytes << in.rdbuf();
  auto trace = DecodeTrace(bytes.str());
  if (!trace.ok()) return absl::Status(trace.status().code(), absl::StrCat(path, ": ", trace.status().message()));
  return trace;
}

}  // namespace sparsepool::bench
