// sparsepool-cluster-bench: what a pool cluster sustains through one client process
// given only etcd's endpoints (issue 13): sequences created (placed by the cluster
// client, which reads the membership from etcd for each) and released per second, and
// top-k entries fetched per second in batches whose rows lie on every node.
// tools/cluster_bench.sh runs it against 1, 2 and 3 nodes.
//
//   sparsepool_cluster_bench --etcd=HOST:PORT [--etcd_prefix=/sparsepool] [--threads=2]
//       [--seconds=3] [--rows=8] [--tokens=8192] [--k=2048]
#include <atomic>
#include <chrono>
#include <cstdio>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "bench/entry_pattern.h"
#include "bench/flag.h"
#include "client/sparsepool_client.h"
#include "common/node_ids.h"

namespace sparsepool::bench {
namespace {

constexpr uint32_t kEntry = 656;

struct Options {
  ClientOptions client;
  int threads = 2;
  double seconds = 3;
  int rows = 8;
  uint64_t tokens = 8192;
  int k = 2048;
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
  Options o;
  o.client.etcd = "";
  for (int i = 1; i < argc; ++i) {
    const Flag f = SplitFlag(argv[i]);
    bool ok = true;
    if (f.key == "--etcd") o.client.etcd = f.value;
    else if (f.key == "--etcd_prefix") o.client.etcd_prefix = f.value;
    else if (f.key == "--threads") ok = absl::SimpleAtoi(f.value, &o.threads) && o.threads > 0;
    else if (f.key == "--seconds") ok = absl::SimpleAtod(f.value, &o.seconds) && o.seconds > 0;
    else if (f.key == "--rows") ok = absl::SimpleAtoi(f.value, &o.rows) && o.rows > 0;
    else if (f.key == "--tokens") ok = absl::SimpleAtoi(f.value, &o.tokens) && o.tokens > 0;
    else if (f.key == "--k") ok = absl::SimpleAtoi(f.value, &o.k) && o.k > 0;
    else ok = false;
    if (!ok) {
      std::fprintf(stderr, "sparsepool_cluster_bench: bad argument %s\n", argv[i]);
      return 2;
    }
  }
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
