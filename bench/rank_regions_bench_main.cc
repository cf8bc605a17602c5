// sparsepool-rank-regions-bench: GPU ranks' sequences in one region, against a region
// per rank, against each sequence's layers striped over the regions (issue 13 item 3;
// SAC stripes tensor-parallel ranks over CXL devices). Each rank is a thread with a
// client of its own and `requests` sequences, created with a placement key (all 0: one
// region; the rank's number: the ranks spread over the daemon's regions) or with
// `stripes` stripes; then every rank fetches every layer's top-k at once, `steps` times,
// on the CPU path, and the rates are compared in one run.
//
//   sparsepoold --region=shm:a:4GiB --region=shm:b:4GiB &      (or numa:0:... numa:1:...)
//   sparsepool_rank_regions_bench --address=HOST:PORT [--ranks=2] [--requests=4]
//       [--context=32768] [--layers=4] [--k=2048] [--steps=40] [--stripes=2]
// (--help lists the flags with their defaults.) On one NUMA node's DRAM two regions are
// two files in the same memory: the comparison then shows what placement costs, not
// what separate devices gain.
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <numeric>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "bench/entry_pattern.h"
#include "client/client_internal.h"
#include "client/sparsepool_client.h"
#include "common/command_line.h"

ABSL_FLAG(std::string, address, "127.0.0.1:7070", "the daemon's gRPC address (HOST:PORT); it should have 2+ regions");
ABSL_FLAG(int, ranks, 2, "ranks (threads, each with a client of its own), positive");
ABSL_FLAG(int, requests, 4, "sequences per rank, positive");
ABSL_FLAG(uint64_t, context, 32768, "tokens per sequence, positive");
ABSL_FLAG(uint32_t, layers, 4, "layers per sequence, positive");
ABSL_FLAG(uint32_t, k, 2048, "entries fetched per sequence and layer (top-k), positive");
ABSL_FLAG(int, steps, 40, "timed steps (every layer fetched for the rank's batch), positive");
ABSL_FLAG(int, copy_threads, 1, "each client's copy threads, positive");
ABSL_FLAG(uint32_t, stripes, 2,
          "regions each sequence's layers are striped over in the third placement; 0 leaves it out");

namespace sparsepool::bench {
namespace {

constexpr uint32_t kEntry = 656;
constexpr uint64_t kSeed = 0x5eed;

struct Options {
  ClientOptions client;
  int ranks = 0, requests = 0, steps = 0;
  uint64_t context = 0;
  uint32_t layers = 0, k = 0, stripes = 0;
};

struct Placement {
  std::string name;
  bool spread = false;  // key = rank; else key 0 for every rank
  uint32_t stripes = 0;  // each sequence's layers over this many regions (stripe 0 at the key)
};

struct Result {
  std::set<uint32_t> regions;
  double seconds = 0;
  uint64_t bytes = 0;
  std::vector<double> step_ms;
};

[[noreturn]] void Die(const std::string& what, const absl::Status& s) {
  std::fprintf(stderr, "sparsepool_rank_regions_bench: %s: %s\n", what.c_str(), s.ToString().c_str());
  std::exit(1);
}

Result Measure(const Options& o, const Placement& placement) {
  struct Rank {
    std::unique_ptr<Client> client;
    std::vector<SequenceId> ids;
  };
  std::vector<Rank> ranks(o.ranks);
  Result result;
  std::vector<std::byte> prompt(o.context * kEntry);
  for (int r = 0; r < o.ranks; ++r) {
    auto client = Client::Connect(o.client);
    if (!client.ok()) Die("connecting", client.status());
    ranks[r].client = *std::move(client);
    for (int q = 0; q < o.requests; ++q) {
      SequenceSpec spec;
      spec.layers = o.layers;
      spec.entry_bytes = kEntry;
      spec.tokens = o.context;
      spec.tenant = "bench";
      spec.placement_key = placement.spread ? static_cast<uint32_t>(r) : 0u;
      spec.stripes = placement.stripes;
      auto id = ranks[r].client->CreateSequence(spec);
      if (!id.ok()) Die("creating a sequence", id.status());
      ranks[r].ids.push_back(*id);
      for (uint32_t layer = 0; layer < o.layers; ++layer) {
        for (uint64_t t = 0; t < o.context; ++t) {
          FillEntry(kSeed, *id, layer, t, absl::MakeSpan(prompt).subspan(t * kEntry, kEntry));
        }
        if (absl::Status s = ranks[r].client->WriteEntries(*id, layer, 0, prompt); !s.ok()) Die("writing", s);
      }
      auto layout = internal::Layout(*ranks[r].client, *id);
      if (!layout.ok()) Die("reading a layout", layout.status());
      for (uint32_t layer = 0; layer < layout->layers; ++layer) result.regions.insert(layout->LayerRegion(layer).index);
    }
  }
  // Every rank's top-k of every step drawn before the clock starts (distinct tokens).
  std::vector<std::vector<int32_t>> indices(o.ranks);
  std::mt19937_64 rng(kSeed);
  std::vector<int32_t> tokens(o.context);
  for (int r = 0; r < o.ranks; ++r) {
    indices[r].resize(uint64_t(o.steps) * o.layers * o.requests * o.k);
    for (uint64_t row = 0; row < uint64_t(o.steps) * o.layers * o.requests; ++row) {
      std::iota(tokens.begin(), tokens.end(), 0);
      for (uint32_t p = 0; p < o.k; ++p) {
        std::swap(tokens[p], tokens[p + rng() % (o.context - p)]);
        indices[r][row * o.k + p] = tokens[p];
      }
    }
  }
  std::vector<std::vector<double>> step_ms(o.ranks);
  std::atomic<int> ready{0};
  std::atomic<bool> go{false};
  std::vector<std::thread> threads;
  for (int r = 0; r < o.ranks; ++r) {
    threads.emplace_back([&, r] {
      std::vector<std::byte> out(uint64_t(o.requests) * o.k * kEntry);
      ++ready;
      while (!go.load()) {
      }
      const uint64_t per_layer = uint64_t(o.requests) * o.k;
      for (int step = 0; step < o.steps; ++step) {
        const auto begin = std::chrono::steady_clock::now();
        for (uint32_t layer = 0; layer < o.layers; ++layer) {
          const auto selected = absl::MakeConstSpan(indices[r]).subspan(
              (uint64_t(step) * o.layers + layer) * per_layer, per_layer);
          if (absl::Status s = ranks[r].client->FetchTopK(layer, ranks[r].ids, selected, absl::MakeSpan(out));
              !s.ok()) {
            Die("fetching", s);
          }
        }
        step_ms[r].push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - begin).count());
      }
      // The last fetch (the last layer), a few entries of each sequence, against what
      // was written.
      const uint64_t last = (uint64_t(o.steps - 1) * o.layers + o.layers - 1) * per_layer;
      std::vector<std::byte> expected(kEntry);
      for (int q = 0; q < o.requests; ++q) {
        for (uint32_t p : {0u, o.k / 2, o.k - 1}) {
          const uint64_t at = uint64_t(q) * o.k + p;
          FillEntry(kSeed, ranks[r].ids[q], o.layers - 1, indices[r][last + at], absl::MakeSpan(expected));
          if (std::memcmp(out.data() + at * kEntry, expected.data(), kEntry) != 0) {
            Die("checking", absl::DataLossError(absl::StrCat("rank ", r, " sequence ", ranks[r].ids[q], " token ",
                                                             indices[r][last + at], " differs from what was written")));
          }
        }
      }
    });
  }
  while (ready.load() < o.ranks) {
  }
  const auto start = std::chrono::steady_clock::now();  // every rank ready: the clock starts with them
  go = true;
  for (auto& t : threads) t.join();
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  result.bytes = uint64_t(o.ranks) * o.steps * o.layers * o.requests * o.k * kEntry;
  for (auto& s : step_ms) result.step_ms.insert(result.step_ms.end(), s.begin(), s.end());
  std::sort(result.step_ms.begin(), result.step_ms.end());
  for (Rank& rank : ranks) {
    for (SequenceId id : rank.ids) (void)rank.client->ReleaseSequence(id);
  }
  return result;
}

int Main(int argc, char** argv) {
  ParseFlagsOnly(argc, argv,
                 "GPU ranks' sequences in one region, a region per rank, or striped over regions (issue 13)\n\n"
                 "usage: sparsepool_rank_regions_bench --address=HOST:PORT [--flag=value...]");
  Options o;
  o.client.address = absl::GetFlag(FLAGS_address);
  o.client.copy_threads = absl::GetFlag(FLAGS_copy_threads);
  o.ranks = absl::GetFlag(FLAGS_ranks);
  o.requests = absl::GetFlag(FLAGS_requests);
  o.context = absl::GetFlag(FLAGS_context);
  o.layers = absl::GetFlag(FLAGS_layers);
  o.k = absl::GetFlag(FLAGS_k);
  o.steps = absl::GetFlag(FLAGS_steps);
  o.stripes = absl::GetFlag(FLAGS_stripes);
  for (auto [name, value] : {std::pair{"ranks", int64_t{o.ranks}}, std::pair{"requests", int64_t{o.requests}},
                             std::pair{"steps", int64_t{o.steps}}, std::pair{"layers", int64_t{o.layers}},
                             std::pair{"k", int64_t{o.k}}}) {
    if (value <= 0) return RefuseFlagValue(name, absl::StrCat(value), "a positive number");
  }
  if (o.context < o.k) return RefuseFlagValue("context", absl::StrCat(o.context), "at least --k tokens");
  if (o.stripes > o.layers) return RefuseFlagValue("stripes", absl::StrCat(o.stripes), "at most --layers");
  std::printf("%d ranks x %d sequences of %llu tokens, %u layers, top-%u of %u-byte entries, %d steps, CPU path\n\n",
              o.ranks, o.requests, static_cast<unsigned long long>(o.context), o.layers, o.k, kEntry, o.steps);
  std::printf("| placement | regions used | fetched | step p50 | step p99 |\n|---|---|---|---|---|\n");
  std::vector<Placement> placements = {Placement{"one region (key 0)", false},
                                       Placement{"a region per rank (key = rank)", true}};
  if (o.stripes > 1) {
    placements.push_back(Placement{absl::StrCat("layers striped over ", o.stripes, " regions (stripe 0 at key = rank)"),
                                   true, o.stripes});
  }
  // Alternated twice, so that no placement always runs on a colder machine.
  bool fell_back = false;
  for (int round = 0; round < 2; ++round) {
    for (const Placement& p : placements) {
      const Result r = Measure(o, p);
      // A placement key's region without free room sends sequences elsewhere: memory an
      // earlier placement released stays reclaimable (not free) until a request needs it.
      const bool off_plan = p.spread ? (o.ranks > 1 && r.regions.size() < 2) : r.regions.size() != 1;
      fell_back |= off_plan;
      std::printf("| %s | %s%s | %.2f GB/s | %.2f ms | %.2f ms |\n", p.name.c_str(),
                  absl::StrJoin(r.regions, ", ").c_str(), off_plan ? " (*)" : "", r.bytes / r.seconds / 1e9,
                  r.step_ms[r.step_ms.size() / 2], r.step_ms[r.step_ms.size() * 99 / 100]);
    }
  }
  if (fell_back) {
    std::printf("\n(*) not the regions the placement asks for: a region without free room sent sequences to "
                "another (what earlier placements released stays reclaimable until needed). Give the daemon "
                "regions large enough for every placement's sequences at once.\n");
  }
  return 0;
}

}  // namespace
}  // namespace sparsepool::bench

int main(int argc, char** argv) { return sparsepool::bench::Main(argc, argv); }
