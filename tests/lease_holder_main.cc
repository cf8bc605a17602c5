// Test helper: connects as a client, creates sequences, prints their ids, then waits
// to be killed. Integration tests use it to prove that a client that dies without a
// word has its sequences reclaimed. A separate process, because a process that has
// started gRPC cannot fork a working copy of itself.
//
//   lease_holder ADDRESS SEQUENCES TOKENS
#include <unistd.h>

#include <cstdio>
#include <cstdlib>

#include "client/sparsepool_client.h"

int main(int argc, char** argv) {
  if (argc != 4) {
    std::fprintf(stderr, "usage: lease_holder ADDRESS SEQUENCES TOKENS\n");
    return 2;
  }
  sparsepool::ClientOptions options;
  options.address = argv[1];
  options.keepalive_interval = absl::Milliseconds(100);
  auto client = sparsepool::Client::Connect(options);
  if (!client.ok()) {
    std::fprintf(stderr, "%s\n", client.status().ToString().c_str());
    return 1;
  }
  for (int i = 0; i < std::atoi(argv[2]); ++i) {
    sparsepool::SequenceSpec spec;
    spec.layers = 4;
    spec.entry_bytes = 656;
    spec.tokens = std::strtoull(argv[3], nullptr, 10);
    auto id = (*client)->CreateSequence(spec);
    if (!id.ok()) {
      std::fprintf(stderr, "%s\n", id.status().ToString().c_str());
      return 1;
    }
    std::printf("%llu\n", static_cast<unsigned long long>(*id));
  }
  std::printf("ready\n");
  std::fflush(stdout);
  while (true) pause();
}
