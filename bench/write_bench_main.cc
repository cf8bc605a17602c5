// CPU write benchmark: how fast a prefill worker's WriteEntries stores a sequence into a
// shared-memory region over the CXL path, for each number of copy threads
// (ClientOptions::copy_threads): once into pages this process has not touched yet
// (each 4 KiB page costs the process a page fault), and once more into the same pages.
// Each round of each thread count writes a fresh sequence; medians over the rounds.
//
//   sparsepool_write_bench [--address=127.0.0.1:7070] [--threads=1,2,4] [--tokens=16384]
//       [--layers=61] [--entry_bytes=656] [--rounds=3]
// The region must hold rounds x (thread counts) sequences without reusing pages (the
// first write would then find pages the daemon zeroed, not fresh ones): 4 GiB for the
// defaults with three thread counts.
#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "bench/flag.h"
#include "bench/median.h"
#include "client/sparsepool_client.h"
#include "common/command_line.h"
#include "common/units.h"

ABSL_FLAG(std::string, address, "127.0.0.1:7070", "the daemon's gRPC address (HOST:PORT)");
ABSL_FLAG(std::vector<std::string>, threads, (std::vector<std::string>{"1", "2", "4"}),
          "copy thread counts to measure (ClientOptions::copy_threads), comma-separated positive numbers");
ABSL_FLAG(uint64_t, tokens, 16384, "tokens per sequence, positive");
ABSL_FLAG(uint32_t, layers, 61, "layers per sequence, positive");
ABSL_FLAG(uint32_t, entry_bytes, 656, "bytes per entry (one token of one layer), positive");
ABSL_FLAG(int, rounds, 3, "rounds per thread count, each a fresh sequence (medians are reported), positive");

namespace sparsepool {
namespace {

// The flags' values (their defaults are the flags').
struct Options {
  std::string address;
  std::vector<int> threads;
  uint64_t tokens = 0;
  uint32_t layers = 0;
  uint32_t entry_bytes = 0;
  int rounds = 0;
};

int Fail(const absl::Status& status) {
  std::fprintf(stderr, "sparsepool_write_bench: %s\n", status.ToString().c_str());
  return 1;
}

// Writes every layer of `id` from `entries`; returns the seconds it took.
absl::StatusOr<double> WriteAllLayers(Client& client, SequenceId id, uint32_t layers,
                                      const std::vector<std::byte>& entries) {
  const auto start = std::chrono::steady_clock::now();
  for (uint32_t layer = 0; layer < layers; ++layer) {
    if (absl::Status s = client.WriteEntries(id, layer, 0, entries); !s.ok()) return s;
  }
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

int Run(int argc, char** argv) {
  ParseFlagsOnly(argc, argv,
                 "CPU writes (WriteEntries over the CXL path) into fresh and already-touched pages, per copy "
                 "thread count, on a running daemon\n\n"
                 "usage: sparsepool_write_bench [--flag=value...]");
  Options o;
  o.address = absl::GetFlag(FLAGS_address);
  o.tokens = absl::GetFlag(FLAGS_tokens);
  o.layers = absl::GetFlag(FLAGS_layers);
  o.entry_bytes = absl::GetFlag(FLAGS_entry_bytes);
  o.rounds = absl::GetFlag(FLAGS_rounds);
  const std::vector<std::string> threads = absl::GetFlag(FLAGS_threads);
  if (!bench::PositiveNumbers(threads, o.threads)) {
    return RefuseFlagValue("threads", absl::StrJoin(threads, ","), "positive numbers, comma-separated");
  }
  if (o.tokens == 0) return RefuseFlagValue("tokens", "0", "must be positive");
  if (o.layers == 0) return RefuseFlagValue("layers", "0", "must be positive");
  if (o.entry_bytes == 0) return RefuseFlagValue("entry_bytes", "0", "must be positive");
  if (o.rounds <= 0) return RefuseFlagValue("rounds", std::to_string(o.rounds), "must be positive");
  std::vector<std::byte> entries(o.tokens * o.entry_bytes, std::byte{0x3C});
  const double bytes = double(o.layers) * entries.size();
  std::vector<std::vector<double>> fresh(o.threads.size()), again(o.threads.size());
  std::vector<std::unique_ptr<Client>> clients;
  for (int threads : o.threads) {
    ClientOptions options;
    options.address = o.address;
    options.copy_threads = threads;
    auto client = Client::Connect(options);
    if (!client.ok()) return Fail(client.status());
    clients.push_back(*std::move(client));
  }
  // Rounds outermost, so that every thread count meets the machine in the same states.
  for (int round = 0; round < o.rounds; ++round) {
    for (size_t t = 0; t < o.threads.size(); ++t) {
      SequenceSpec spec;
      spec.layers = o.layers;
      spec.entry_bytes = o.entry_bytes;
      spec.tokens = o.tokens;
      auto id = clients[t]->CreateSequence(spec);
      if (!id.ok()) return Fail(id.status());
      auto first = WriteAllLayers(*clients[t], *id, o.layers, entries);
      if (!first.ok()) return Fail(first.status());
      auto second = WriteAllLayers(*clients[t], *id, o.layers, entries);
      if (!second.ok()) return Fail(second.status());
      fresh[t].push_back(*first);
      again[t].push_back(*second);
      // Released, not reused: later sequences take free pages first.
      (void)clients[t]->ReleaseSequence(*id);
    }
  }
  std::printf("CPU writes: %u layers x %llu tokens x %u B per sequence (%s), %d rounds, medians\n",
              o.layers, static_cast<unsigned long long>(o.tokens), o.entry_bytes,
              FormatBytes(static_cast<uint64_t>(bytes)).c_str(), o.rounds);
  std::printf("| copy threads | fresh pages GB/s | vs 1st row | same pages again GB/s | vs 1st row |\n"
              "|---|---|---|---|---|\n");
  const double fresh_base = bytes / bench::Median(fresh[0]);
  const double again_base = bytes / bench::Median(again[0]);
  for (size_t t = 0; t < o.threads.size(); ++t) {
    const double f = bytes / bench::Median(fresh[t]);
    const double a = bytes / bench::Median(again[t]);
    std::printf("| %d | %.2f | %.2fx | %.2f | %.2fx |\n", o.threads[t], f / 1e9, f / fresh_base,
                a / 1e9, a / again_base);
  }
  return 0;
}

}  // namespace
}  // namespace sparsepool

int main(int argc, char** argv) { return sparsepool::Run(argc, argv); }
