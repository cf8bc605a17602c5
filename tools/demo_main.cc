// The sparsepool demo: against a running daemon, writes DeepSeek-V3.2-shaped latent
// caches for a few requests (61 layers, 656-byte FP8 MLA entries, page 64), runs decode
// steps that each append a token and fetch the top-2048 entries of every layer for the
// whole batch, checks every fetched byte, and compares with fetching each request's
// whole prefix, as a pool built for dense attention does.
//
//   sparsepool_demo --address=127.0.0.1:7070 [--contexts=4096,8192,16384,32768]
//                   [--steps=8] [--layers=61] [--entry_bytes=656] [--topk=2048]
//                   [--copy_threads=N (default: up to 4, as the machine has cores)]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <numeric>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "bench/entry_pattern.h"
#include "bench/topk_selection.h"
#include "client/sparsepool_client.h"
#include "common/command_line.h"
#include "common/units.h"

ABSL_FLAG(std::string, address, "127.0.0.1:7070", "the daemon's gRPC address (HOST:PORT)");
ABSL_FLAG(std::vector<std::string>, contexts, std::vector<std::string>({"4096", "8192", "16384", "32768"}),
          "each request's context in tokens, one request per value (comma-separated)");
ABSL_FLAG(int, steps, 8, "decode steps");
ABSL_FLAG(uint32_t, layers, 61, "layers per sequence");
ABSL_FLAG(uint32_t, entry_bytes, 656, "bytes per latent entry (656: FP8 MLA)");
ABSL_FLAG(uint32_t, topk, 2048, "entries each layer's fetch selects per request");
ABSL_FLAG(int, copy_threads, 0, "the client's copy threads (0: up to 4, as the machine has cores)");

namespace sparsepool {
namespace {

constexpr uint64_t kSeed = 0xDEE95EEC;

struct DemoOptions {
  std::string address = "127.0.0.1:7070";
  std::vector<uint64_t> contexts = {4096, 8192, 16384, 32768};
  int steps = 8;
  uint32_t layers = 61;
  uint32_t entry_bytes = 656;
  uint32_t topk = 2048;
  int copy_threads = static_cast<int>(std::clamp(std::thread::hardware_concurrency(), 1u, 4u));
};

absl::StatusOr<DemoOptions> ParseOptions(int argc, char** argv) {
  ParseFlagsOnly(argc, argv,
                 "writes DeepSeek-V3.2-shaped latent caches to a running daemon, runs decode steps that fetch the "
                 "top-k of every layer, checks every byte, and compares with fetching whole prefixes\n\n"
                 "usage: sparsepool_demo --address=HOST:PORT [--flag=value...]");
  DemoOptions o;
  o.address = absl::GetFlag(FLAGS_address);
  o.contexts.clear();
  for (const std::string& context : absl::GetFlag(FLAGS_contexts)) {
    uint64_t tokens = 0;
    if (!absl::SimpleAtoi(context, &tokens) || tokens == 0) {
      return absl::InvalidArgumentError(absl::StrCat("--contexts: \"", context, "\" is not a positive number"));
    }
    o.contexts.push_back(tokens);
  }
  if (o.contexts.empty()) return absl::InvalidArgumentError("--contexts is empty");
  o.steps = absl::GetFlag(FLAGS_steps);
  o.layers = absl::GetFlag(FLAGS_layers);
  o.entry_bytes = absl::GetFlag(FLAGS_entry_bytes);
  o.topk = absl::GetFlag(FLAGS_topk);
  if (o.steps <= 0 || o.layers == 0 || o.entry_bytes == 0 || o.topk == 0) {
    return absl::InvalidArgumentError("--steps, --layers, --entry_bytes and --topk are at least 1");
  }
  if (const int threads = absl::GetFlag(FLAGS_copy_threads); threads != 0) {
    if (threads < 1 || threads > kMaxCopyThreads) {
      return absl::InvalidArgumentError(absl::StrCat("--copy_threads=", threads, " is not in [1, ", kMaxCopyThreads, "]"));
    }
    o.copy_threads = threads;
  }
  return o;
}

double Seconds(std::chrono::steady_clock::duration d) {
  return std::chrono::duration<double>(d).count();
}

// Fetches one layer for the batch and checks every byte against the pattern.
absl::Status FetchLayer(Client& client, const std::vector<SequenceId>& batch, uint32_t layer,
                        const std::vector<int32_t>& indices, uint32_t entry_bytes,
                        std::vector<std::byte>& out, double* fetch_seconds, uint64_t* entries) {
  const auto start = std::chrono::steady_clock::now();
  absl::Status fetched = client.FetchTopK(layer, batch, indices, absl::MakeSpan(out));
  *fetch_seconds += Seconds(std::chrono::steady_clock::now() - start);
  if (!fetched.ok()) return fetched;
  const size_t k = indices.size() / batch.size();
  std::vector<std::byte> expected(entry_bytes);
  for (size_t i = 0; i < indices.size(); ++i) {
    if (indices[i] < 0) continue;
    ++*entries;
    bench::FillEntry(kSeed, batch[i / k], layer, indices[i], absl::MakeSpan(expected));
    if (std::memcmp(out.data() + i * entry_bytes, expected.data(), entry_bytes) != 0) {
      return absl::DataLossError(absl::StrCat("byte mismatch: sequence ", batch[i / k], " layer ",
                                              layer, " token ", indices[i]));
    }
  }
  return absl::OkStatus();
}

int Run(int argc, char** argv) {
  auto options = ParseOptions(argc, argv);
  if (!options.ok()) {
    std::fprintf(stderr, "sparsepool_demo: %s\n", std::string(options.status().message()).c_str());
    return 2;
  }
  const DemoOptions& o = *options;
  ClientOptions client_options;
  client_options.address = o.address;
  client_options.copy_threads = o.copy_threads;
  auto connected = Client::Connect(client_options);
  if (!connected.ok()) {
    std::fprintf(stderr, "sparsepool_demo: %s\n", connected.status().ToString().c_str());
    return 1;
  }
  Client& client = **connected;
  const uint64_t total_tokens = std::accumulate(o.contexts.begin(), o.contexts.end(), uint64_t{0});
  std::printf("sparsepool demo: %zu requests, %llu tokens in all, %u layers x %u-byte entries, "
              "page 64, top-%u, CPU gather on %d thread%s\n",
              o.contexts.size(), static_cast<unsigned long long>(total_tokens), o.layers,
              o.entry_bytes, o.topk, o.copy_threads, o.copy_threads == 1 ? "" : "s");

  // Prefill: every entry of every layer, written through the client's data plane.
  std::vector<SequenceId> batch;
  std::vector<uint64_t> tokens = o.contexts;
  const auto prefill_start = std::chrono::steady_clock::now();
  for (uint64_t n : o.contexts) {
    SequenceSpec spec;
    spec.layers = o.layers;
    spec.entry_bytes = o.entry_bytes;
    spec.tokens = n;
    spec.tenant = "demo";
    auto id = client.CreateSequence(spec);
    if (!id.ok()) {
      std::fprintf(stderr, "sparsepool_demo: %s\n", id.status().ToString().c_str());
      return 1;
    }
    std::vector<std::byte> entries(n * o.entry_bytes);
    for (uint32_t layer = 0; layer < o.layers; ++layer) {
      for (uint64_t t = 0; t < n; ++t) {
        bench::FillEntry(kSeed, *id, layer, t,
                         absl::MakeSpan(entries).subspan(t * o.entry_bytes, o.entry_bytes));
      }
      absl::Status written = client.WriteEntries(*id, layer, 0, entries);
      if (!written.ok()) {
        std::fprintf(stderr, "sparsepool_demo: %s\n", written.ToString().c_str());
        return 1;
      }
    }
    batch.push_back(*id);
  }
  const double prefill_seconds = Seconds(std::chrono::steady_clock::now() - prefill_start);
  const uint64_t prefill_bytes = total_tokens * o.layers * o.entry_bytes;
  std::printf("prefill: wrote %s in %.2f s\n", FormatBytes(prefill_bytes).c_str(), prefill_seconds);

  // Decode: each step appends one token to every request, then fetches every layer.
  std::mt19937_64 rng(7);
  std::vector<int32_t> indices(batch.size() * o.topk);
  std::vector<std::byte> out(indices.size() * o.entry_bytes);
  std::vector<std::byte> entry(o.entry_bytes);
  double topk_seconds = 0;
  uint64_t topk_entries = 0;
  for (int step = 0; step < o.steps; ++step) {
    for (size_t r = 0; r < batch.size(); ++r) {
      const uint64_t t = tokens[r]++;
      absl::Status grown = client.ExtendSequence(batch[r], tokens[r]);
      for (uint32_t layer = 0; grown.ok() && layer < o.layers; ++layer) {
        bench::FillEntry(kSeed, batch[r], layer, t, absl::MakeSpan(entry));
        grown = client.WriteEntries(batch[r], layer, t, entry);
      }
      if (!grown.ok()) {
        std::fprintf(stderr, "sparsepool_demo: %s\n", grown.ToString().c_str());
        return 1;
      }
    }
    for (uint32_t layer = 0; layer < o.layers; ++layer) {
      for (size_t r = 0; r < batch.size(); ++r) {
        bench::SelectTopK(tokens[r], 4, 128, rng,
                          absl::MakeSpan(indices).subspan(r * o.topk, o.topk));
      }
      absl::Status fetched = FetchLayer(client, batch, layer, indices, o.entry_bytes, out,
                                        &topk_seconds, &topk_entries);
      if (!fetched.ok()) {
        std::fprintf(stderr, "sparsepool_demo: %s\n", fetched.ToString().c_str());
        return 1;
      }
    }
  }
  std::printf("decode: %d steps x %u layers x %zu requests, every fetched byte checked: OK\n",
              o.steps, o.layers, batch.size());

  // One step's worth of full-prefix fetches: every token of every layer.
  double full_seconds = 0;
  uint64_t full_entries = 0;
  for (uint32_t layer = 0; layer < o.layers; ++layer) {
    for (size_t r = 0; r < batch.size(); ++r) {
      std::vector<int32_t> all(tokens[r]);
      std::iota(all.begin(), all.end(), 0);
      std::vector<std::byte> prefix(all.size() * o.entry_bytes);
      absl::Status fetched = FetchLayer(client, {batch[r]}, layer, all, o.entry_bytes, prefix,
                                        &full_seconds, &full_entries);
      if (!fetched.ok()) {
        std::fprintf(stderr, "sparsepool_demo: %s\n", fetched.ToString().c_str());
        return 1;
      }
    }
  }

  const double topk_step_bytes = double(topk_entries) * o.entry_bytes / o.steps;
  const double topk_step_seconds = topk_seconds / o.steps;
  const double full_step_bytes = double(full_entries) * o.entry_bytes;
  std::printf("\n| fetch per decode step | bytes moved | fetch time | GB/s | entries/s |\n");
  std::printf("|---|---|---|---|---|\n");
  std::printf("| top-%u per layer | %s | %.1f ms | %.2f | %.1f M |\n", o.topk,
              FormatBytes(static_cast<uint64_t>(topk_step_bytes)).c_str(), topk_step_seconds * 1e3,
              topk_step_bytes / topk_step_seconds / 1e9,
              topk_entries / topk_seconds / 1e6);
  std::printf("| full prefix per layer | %s | %.1f ms | %.2f | %.1f M |\n",
              FormatBytes(static_cast<uint64_t>(full_step_bytes)).c_str(), full_seconds * 1e3,
              full_step_bytes / full_seconds / 1e9, full_entries / full_seconds / 1e6);
  std::printf("\ntop-k fetch moves %.1fx fewer bytes per step than full-prefix fetch "
              "(%.1fx less time), CPU load/store path on %d thread%s for both\n",
              full_step_bytes / topk_step_bytes, full_seconds / topk_step_seconds, o.copy_threads,
              o.copy_threads == 1 ? "" : "s");
  for (SequenceId id : batch) (void)client.ReleaseSequence(id);
  return 0;
}

}  // namespace
}  // namespace sparsepool

int main(int argc, char** argv) { return sparsepool::Run(argc, argv); }
