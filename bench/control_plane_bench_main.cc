// Control-plane benchmark: CreateSequence + ReleaseSequence pairs per second from
// several client threads over loopback gRPC, each thread with a client of its own.
//
//   sparsepool_control_plane_bench [--address=127.0.0.1:7070] [--threads=4] [--seconds=5]
//       [--layers=61] [--tokens=0] [--clients=N (default: one per thread)] [--inflight=8]
// (--help lists the flags with their defaults.)
#include <atomic>
#include <chrono>
#include <cstdio>
#include <functional>
#include <string>
#include <thread>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "absl/synchronization/mutex.h"
#include "absl/time/clock.h"
#include "client/sparsepool_client.h"
#include "common/command_line.h"
#include "grpcpp/create_channel.h"
#include "proto/sparsepool.grpc.pb.h"

ABSL_FLAG(std::string, address, "127.0.0.1:7070", "the daemon's gRPC address (HOST:PORT)");
ABSL_FLAG(int, threads, 4, "client threads making calls at once, positive");
ABSL_FLAG(double, seconds, 5, "how long each of the three measurements runs, seconds, positive");
ABSL_FLAG(uint32_t, layers, 61, "layers of each created sequence");
ABSL_FLAG(uint64_t, tokens, 0, "tokens of each created sequence (0: no pages, the control plane alone)");
ABSL_FLAG(int, clients, 0, "clients (gRPC channels) the threads share, at most one per thread; 0: one per thread");
ABSL_FLAG(int, inflight, 8, "create+release pairs in flight per thread in the asynchronous run, positive");

namespace sparsepool {
namespace {

// Runs `body(thread, stop)` on `threads` threads until `seconds` have passed (each body
// loops until `stop` is set) and returns the seconds elapsed.
double RunThreads(int threads, double seconds,
                  const std::function<void(int thread, const std::atomic<bool>& stop)>& body) {
  std::atomic<bool> stop{false};
  std::vector<std::thread> workers;
  const auto start = std::chrono::steady_clock::now();
  for (int t = 0; t < threads; ++t) workers.emplace_back([&, t] { body(t, stop); });
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  stop = true;
  for (auto& w : workers) w.join();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// Pairs of empty Health calls on raw stubs, the same threads and channels: what gRPC
// itself costs per call on this machine, the floor under every control-plane request.
double HealthPairsPerSecond(const std::string& address, int threads, double seconds) {
  std::atomic<uint64_t> pairs{0};
  const double elapsed = RunThreads(threads, seconds, [&](int, const std::atomic<bool>& stop) {
    auto stub = v1::PoolService::NewStub(grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
    while (!stop.load(std::memory_order_relaxed)) {
      for (int i = 0; i < 2; ++i) {
        grpc::ClientContext context;
        context.set_deadline(absl::ToChronoTime(absl::Now() + absl::Seconds(5)));
        v1::HealthResponse response;
        if (!stub->Health(&context, v1::HealthRequest(), &response).ok()) return;
      }
      ++pairs;
    }
  });
  return pairs / elapsed;
}

// Pairs through the client library's asynchronous calls (CreateSequenceAsync, then
// ReleaseSequenceAsync from its callback): each thread keeps `inflight` pairs in flight
// on its client, as a scheduler admitting and retiring many requests at once would.
double AsyncPairsPerSecond(const std::vector<std::unique_ptr<Client>>& clients, int threads, int inflight,
                           double seconds, const SequenceSpec& spec, std::atomic<uint64_t>& failures) {
  std::atomic<uint64_t> pairs{0};
  const double elapsed = RunThreads(threads, seconds, [&](int t, const std::atomic<bool>& stop) {
    Client& client = *clients[t % clients.size()];
    // Pairs of this thread in flight, bounded by `inflight`.
    struct Window {
      absl::Mutex mu;
      int in_flight = 0;
      int limit = 0;
      bool HasRoom() const { return in_flight < limit; }
      bool Empty() const { return in_flight == 0; }
    } window;
    window.limit = inflight;
    auto done = [&] {
      absl::MutexLock lock(&window.mu);
      --window.in_flight;
    };
    while (!stop.load(std::memory_order_relaxed)) {
      {
        absl::MutexLock lock(&window.mu);
        window.mu.Await(absl::Condition(&window, &Window::HasRoom));
        ++window.in_flight;
      }
      client.CreateSequenceAsync(spec, [&](absl::StatusOr<SequenceId> id) {
        if (!id.ok()) {
          ++failures;
          return done();
        }
        client.ReleaseSequenceAsync(*id, [&](absl::Status s) {
          ++(s.ok() ? pairs : failures);
          done();
        });
      });
    }
    absl::MutexLock lock(&window.mu);
    window.mu.Await(absl::Condition(&window, &Window::Empty));
  });
  return pairs / elapsed;
}

int Run(int argc, char** argv) {
  ParseFlagsOnly(argc, argv,
                 "control-plane benchmark: CreateSequence + ReleaseSequence pairs per second from several client "
                 "threads over loopback gRPC, on a running daemon\n\n"
                 "usage: sparsepool_control_plane_bench [--flag=value...]");
  const std::string address = absl::GetFlag(FLAGS_address);
  const int threads = absl::GetFlag(FLAGS_threads);
  const double seconds = absl::GetFlag(FLAGS_seconds);
  const uint32_t layers = absl::GetFlag(FLAGS_layers);
  const uint64_t tokens = absl::GetFlag(FLAGS_tokens);
  int channels = absl::GetFlag(FLAGS_clients);  // 0: one client (one gRPC channel) per thread
  const int inflight = absl::GetFlag(FLAGS_inflight);  // pairs outstanding per thread in the async run
  if (threads <= 0) return RefuseFlagValue("threads", absl::StrCat(threads), "must be positive");
  if (!(seconds > 0)) return RefuseFlagValue("seconds", absl::StrCat(seconds), "must be positive");
  if (channels < 0) return RefuseFlagValue("clients", absl::StrCat(channels), "0 or more");
  if (inflight <= 0) return RefuseFlagValue("inflight", absl::StrCat(inflight), "must be positive");
  std::vector<std::unique_ptr<Client>> clients;
  if (channels == 0 || channels > threads) channels = threads;
  for (int t = 0; t < channels; ++t) {
    ClientOptions options;
    options.address = address;
    auto client = Client::Connect(options);
    if (!client.ok()) {
      std::fprintf(stderr, "%s\n", client.status().ToString().c_str());
      return 1;
    }
    clients.push_back(*std::move(client));
  }
  SequenceSpec spec;
  spec.layers = layers;
  spec.entry_bytes = 656;
  spec.tokens = tokens;
  std::atomic<uint64_t> pairs{0};
  std::atomic<uint64_t> failures{0};
  const double elapsed = RunThreads(threads, seconds, [&](int t, const std::atomic<bool>& stop) {
    Client& client = *clients[t % clients.size()];
    while (!stop.load(std::memory_order_relaxed)) {
      auto id = client.CreateSequence(spec);
      if (!id.ok() || !client.ReleaseSequence(*id).ok()) {
        ++failures;
        continue;
      }
      ++pairs;
    }
  });
  std::printf("control plane: %d threads on %zu client(s), CreateSequence(%u layers, %llu tokens) + "
              "ReleaseSequence over loopback gRPC, %.1f s\n",
              threads, clients.size(), layers, static_cast<unsigned long long>(tokens), elapsed);
  std::printf("%.0f pairs/s (%llu pairs, %llu failures) (target >= 10000 with 4 threads)\n",
              pairs / elapsed, static_cast<unsigned long long>(pairs.load()),
              static_cast<unsigned long long>(failures.load()));
  std::printf("baseline, same threads: %.0f pairs/s of empty Health calls (gRPC's own cost)\n",
              HealthPairsPerSecond(address, threads, seconds));
  const double pipelined = AsyncPairsPerSecond(clients, threads, inflight, seconds, spec, failures);
  std::printf("client library, async calls, same threads, %d pairs in flight per thread: %.0f pairs/s\n",
              inflight, pipelined);
  return failures.load() == 0 ? 0 : 1;
}

}  // namespace
}  // namespace sparsepool

int main(int argc, char** argv) { return sparsepool::Run(argc, argv); }
