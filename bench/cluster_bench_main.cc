// sparsepool-cluster-bench: what a pool cluster sustains through one client process
// given only etcd's endpoints (issue 13): sequences created (placed by the cluster
// client, which reads the membership from etcd for each) and released per second, and
// top-k entries fetched per second in batches whose rows lie on every node.
// tools/cluster_bench.sh runs it against 1, 2 and 3 nodes.
//
//   sparsepool_cluster_bench --etcd=HOST:PORT [--etcd_prefix=/sparsepool] [--threads=2]
//       [--seconds=3] [--rows=8] [--tokens=8192] [--k=2048]
// (--help lists the flags with their defaults.)
#include <atomic>
#include <chrono>
#include <cstdio>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "bench/entry_pattern.h"
#include "client/sparsepool_client.h"
#include "common/command_line.h"
#include "common/node_ids.h"

ABSL_FLAG(std::string, etcd, "",
          "etcd's endpoints, HOST:PORT[,HOST:PORT...], where the cluster's nodes register (required)");
ABSL_FLAG(std::string, etcd_prefix, "/sparsepool", "the cluster's key prefix in etcd");
ABSL_FLAG(int, threads, 2, "client threads issuing calls at once, positive");
ABSL_FLAG(double, seconds, 3, "how long each of the two measurements runs, seconds, positive");
ABSL_FLAG(int, rows, 8, "sequences in each fetch batch (placed by the cluster client), positive");
ABSL_FLAG(uint64_t, tokens, 8192, "tokens per fetched sequence, positive");
ABSL_FLAG(int, k, 2048, "entries fetched per row and batch (top-k), positive");

namespace sparsepool::bench {
namespace {

constexpr uint32_t kEntry = 656;

// The flags' values (their defaults are the flags').
struct Options {
  ClientOptions client;
  int threads = 0;
  double seconds = 0;
  int rows = 0;
  uint64_t tokens = 0;
  int k = 0;
};

// Runs `body(thread)` on `threads` threads until `seconds` pass; returns the seconds.
template <typename Body>
double RunFor(const Options& o, Body body) {
  std::atomic<bool> stop{false};
  std::vector<std::thread> workers;
  const auto start = std::chrono::steady_clock::now();
  for (int t = 0; t < o.threads; ++t) workers.emplace_back([&, t] { body(t, stop); });
  std::this_thread::sleep_for(std::chrono::duration<double>(o.seconds));
  stop = true;
  for (auto& w : workers) w.join();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

int Run(int argc, char** argv) {
  ParseFlagsOnly(argc, argv,
                 "what a pool cluster sustains through one client given etcd's endpoints (issue 13): creates "
                 "and releases per second, top-k entries fetched per second\n\n"
                 "usage: sparsepool_cluster_bench --etcd=HOST:PORT [--flag=value...]");
  Options o;
  o.client.etcd = absl::GetFlag(FLAGS_etcd);
  o.client.etcd_prefix = absl::GetFlag(FLAGS_etcd_prefix);
  o.threads = absl::GetFlag(FLAGS_threads);
  o.seconds = absl::GetFlag(FLAGS_seconds);
  o.rows = absl::GetFlag(FLAGS_rows);
  o.tokens = absl::GetFlag(FLAGS_tokens);
  o.k = absl::GetFlag(FLAGS_k);
  if (o.threads <= 0) return RefuseFlagValue("threads", absl::StrCat(o.threads), "must be positive");
  if (!(o.seconds > 0)) return RefuseFlagValue("seconds", absl::StrCat(o.seconds), "must be positive");
  if (o.rows <= 0) return RefuseFlagValue("rows", absl::StrCat(o.rows), "must be positive");
  if (o.tokens == 0) return RefuseFlagValue("tokens", "0", "must be positive");
  if (o.k <= 0) return RefuseFlagValue("k", absl::StrCat(o.k), "must be positive");
  if (o.client.etcd.empty()) {
    std::fprintf(stderr, "sparsepool_cluster_bench: give --etcd=HOST:PORT\n");
    return 2;
  }
  auto client = Client::Connect(o.client);
  if (!client.ok()) {
    std::fprintf(stderr, "sparsepool_cluster_bench: %s\n", client.status().ToString().c_str());
    return 1;
  }
  Client& c = **client;

  // Creates and releases: each create reads the membership from etcd and places.
  std::atomic<uint64_t> pairs{0}, failures{0};
  SequenceSpec small;
  small.layers = 61;
  small.entry_bytes = kEntry;
  small.tokens = 64;  // one page a layer: the control plane and placement, not zeroing
  const double create_s = RunFor(o, [&](int, const std::atomic<bool>& stop) {
    while (!stop) {
      auto id = c.CreateSequence(small);
      if (!id.ok() || !c.ReleaseSequence(*id).ok()) {
        ++failures;
        continue;
      }
      ++pairs;
    }
  });

  // Fetches: `rows` sequences placed by the client (spread by free bytes), written, then
  // batches of every row's top-k on every thread.
  SequenceSpec spec;
  spec.layers = 1;
  spec.entry_bytes = kEntry;
  spec.tokens = o.tokens;
  std::vector<SequenceId> batch;
  std::map<uint32_t, int> per_node;
  std::vector<std::byte> entries(o.tokens * kEntry);
  for (int r = 0; r < o.rows; ++r) {
    auto id = c.CreateSequence(spec);
    if (!id.ok()) {
      std::fprintf(stderr, "sparsepool_cluster_bench: %s\n", id.status().ToString().c_str());
      return 1;
    }
    for (uint64_t t = 0; t < o.tokens; ++t) FillEntry(3, *id, 0, t, absl::MakeSpan(entries).subspan(t * kEntry, kEntry));
    if (absl::Status s = c.WriteEntries(*id, 0, 0, entries); !s.ok()) {
      std::fprintf(stderr, "sparsepool_cluster_bench: %s\n", s.ToString().c_str());
      return 1;
    }
    batch.push_back(*id);
    ++per_node[NodeOfSequence(*id)];
  }
  std::atomic<uint64_t> fetched{0};
  const double fetch_s = RunFor(o, [&](int thread, const std::atomic<bool>& stop) {
    std::vector<int32_t> indices(batch.size() * o.k);
    std::vector<std::byte> out(indices.size() * kEntry), expected(kEntry);
    uint64_t x = 88172645463325252ull + thread;
    while (!stop) {
      for (int32_t& i : indices) {
        x ^= x << 13, x ^= x >> 7, x ^= x << 17;
        i = static_cast<int32_t>(x % o.tokens);
      }
      if (!c.FetchTopK(0, batch, indices, absl::MakeSpan(out)).ok()) {
        ++failures;
        continue;
      }
      FillEntry(3, batch[0], 0, indices[0], absl::MakeSpan(expected));  // one entry checked per batch
      if (std::memcmp(out.data(), expected.data(), kEntry) != 0) ++failures;
      fetched += indices.size();
    }
  });
  for (SequenceId id : batch) (void)c.ReleaseSequence(id);

  std::string spread;
  for (const auto& [node, n] : per_node) absl::StrAppend(&spread, spread.empty() ? "" : ", ", "node ", node, ": ", n);
  std::printf("| %zu | %.0f | %.2f M | %s | %llu |\n", per_node.size(), pairs / create_s, fetched / fetch_s / 1e6,
              spread.c_str(), static_cast<unsigned long long>(failures.load()));
  return failures == 0 ? 0 : 1;
}

}  // namespace
}  // namespace sparsepool::bench

int main(int argc, char** argv) { return sparsepool::bench::Run(argc, argv); }
