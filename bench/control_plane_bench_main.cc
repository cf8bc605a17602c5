// Control-plane benchmark: CreateSequence + ReleaseSequence pairs per second from
// several client threads over loopback gRPC, each thread with a client of its own.
//
//   sparsepool_control_plane_bench --address=HOST:PORT [--threads=4] [--seconds=5]
//       [--layers=61] [--tokens=0] [--clients=N (default: one per thread)] [--inflight=8]
#include <atomic>
#include <chrono>
#include <cstdio>
#include <string>
#include <thread>
#include <vector>

#include "absl/strings/numbers.h"
#include "bench/flag.h"
#include "absl/time/clock.h"
#include "client/sparsepool_client.h"
#include "grpcpp/create_channel.h"
#include "proto/sparsepool.grpc.pb.h"

namespace sparsepool {
namespace {

// Pairs of empty Health calls on raw stubs, the same threads and channels: what gRPC
// itself costs per call on this machine, the floor under every control-plane request.
double HealthPairsPerSecond(const std::string& address, int threads, double seconds) {
  std::atomic<uint64_t> pairs{0};
  std::atomic<bool> stop{false};
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&] {
      auto stub = v1::PoolService::NewStub(
          grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
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
  }
  const auto start = std::chrono::steady_clock::now();
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  stop = true;
  for (auto& w : workers) w.join();
  return pairs / std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// Pairs with `inflight` pairs outstanding per thread, over the async gRPC API: each
// thread keeps its requests in flight on its own completion queue, which is how a
// scheduler that creates and releases many sequences at once talks to the daemon.
double PipelinedPairsPerSecond(const std::string& address, int threads, int inflight,
                               double seconds, uint32_t layers, uint64_t tokens,
                               std::atomic<uint64_t>& failures) {
  std::atomic<uint64_t> pairs{0};
  std::atomic<bool> stop{false};
  std::vector<std::thread> workers;
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&] {
      auto stub = v1::PoolService::NewStub(grpc::CreateChannel(address, grpc::InsecureChannelCredentials()));
      grpc::CompletionQueue queue;
      struct Call {
        grpc::ClientContext context;
        v1::CreateSequenceResponse created;
        v1::ReleaseSequenceResponse released;
        grpc::Status status;
        bool releasing = false;
        std::unique_ptr<grpc::ClientAsyncResponseReader<v1::CreateSequenceResponse>> create;
        std::unique_ptr<grpc::ClientAsyncResponseReader<v1::ReleaseSequenceResponse>> release;
      };
      v1::CreateSequenceRequest create;
      create.set_client_id("pipelined-bench");
      create.set_layers(layers);
      create.set_entry_bytes(656);
      create.set_tokens(tokens);
      auto start_create = [&](Call* call) {
        call->create = stub->AsyncCreateSequence(&call->context, create, &queue);
        call->create->Finish(&call->created, &call->status, call);
      };
      int outstanding = 0;
      for (int i = 0; i < inflight; ++i, ++outstanding) start_create(new Call);
      void* tag = nullptr;
      bool ok = false;
      while (outstanding > 0 && queue.Next(&tag, &ok)) {
        std::unique_ptr<Call> call(static_cast<Call*>(tag));
        if (!ok || !call->status.ok()) {
          ++failures;
          --outstanding;
          continue;
        }
        if (!call->releasing) {
          auto next = std::make_unique<Call>();
          next->releasing = true;
          v1::ReleaseSequenceRequest release;
          release.set_client_id("pipelined-bench");
          release.set_sequence_id(call->created.layout().sequence_id());
          next->release = stub->AsyncReleaseSequence(&next->context, release, &queue);
          next->release->Finish(&next->released, &next->status, next.get());
          next.release();
          continue;
        }
        ++pairs;
        if (stop.load(std::memory_order_relaxed)) {
          --outstanding;
        } else {
          start_create(new Call);
        }
      }
    });
  }
  const auto start = std::chrono::steady_clock::now();
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  stop = true;
  for (auto& w : workers) w.join();
  return pairs / std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

int Run(int argc, char** argv) {
  std::string address = "127.0.0.1:7070";
  int threads = 4;
  double seconds = 5;
  uint32_t layers = 61;
  uint64_t tokens = 0;
  int channels = 0;  // 0: one client (one gRPC channel) per thread
  int inflight = 8;  // pairs outstanding per thread in the pipelined run
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    const auto [key, value] = bench::SplitFlag(arg);
    bool ok = true;
    if (key == "--address") address = value;
    else if (key == "--threads") ok = absl::SimpleAtoi(value, &threads) && threads > 0;
    else if (key == "--seconds") ok = absl::SimpleAtod(value, &seconds) && seconds > 0;
    else if (key == "--layers") ok = absl::SimpleAtoi(value, &layers);
    else if (key == "--tokens") ok = absl::SimpleAtoi(value, &tokens);
    else if (key == "--clients") ok = absl::SimpleAtoi(value, &channels) && channels >= 0;
    else if (key == "--inflight") ok = absl::SimpleAtoi(value, &inflight) && inflight > 0;
    else ok = false;
    if (!ok) {
      std::fprintf(stderr, "bad argument %s\n", arg.c_str());
      return 2;
    }
  }
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
  std::atomic<uint64_t> pairs{0};
  std::atomic<uint64_t> failures{0};
  std::atomic<bool> stop{false};
  std::vector<std::thread> workers;
  const auto start = std::chrono::steady_clock::now();
  for (int t = 0; t < threads; ++t) {
    workers.emplace_back([&, t] {
      SequenceSpec spec;
      spec.layers = layers;
      spec.entry_bytes = 656;
      spec.tokens = tokens;
      while (!stop.load(std::memory_order_relaxed)) {
        Client& client = *clients[t % clients.size()];
        auto id = client.CreateSequence(spec);
        if (!id.ok() || !client.ReleaseSequence(*id).ok()) {
          ++failures;
          continue;
        }
        ++pairs;
      }
    });
  }
  std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
  stop = true;
  for (auto& w : workers) w.join();
  const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("control plane: %d threads on %zu client(s), CreateSequence(%u layers, %llu tokens) + "
              "ReleaseSequence over loopback gRPC, %.1f s\n",
              threads, clients.size(), layers, static_cast<unsigned long long>(tokens), elapsed);
  std::printf("%.0f pairs/s (%llu pairs, %llu failures) (target >= 10000 with 4 threads)\n",
              pairs / elapsed, static_cast<unsigned long long>(pairs.load()),
              static_cast<unsigned long long>(failures.load()));
  std::printf("baseline, same threads: %.0f pairs/s of empty Health calls (gRPC's own cost)\n",
              HealthPairsPerSecond(address, threads, seconds));
  const double pipelined =
      PipelinedPairsPerSecond(address, threads, inflight, seconds, layers, tokens, failures);
  std::printf("pipelined, same threads, %d pairs in flight per thread (async gRPC): %.0f pairs/s\n",
              inflight, pipelined);
  return failures.load() == 0 ? 0 : 1;
}

}  // namespace
}  // namespace sparsepool

int main(int argc, char** argv) { return sparsepool::Run(argc, argv); }
