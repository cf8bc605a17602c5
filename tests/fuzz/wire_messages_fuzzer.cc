// libFuzzer: what a client parses from the daemon's answers (a daemon it cannot trust
// blindly, or a corrupted stream): sequence layouts and verbs endpoints. The first byte
// picks the message; the rest is its wire bytes. Whatever parses is either refused or
// safe to use: every entry of an accepted layout lies inside its region, and an
// accepted endpoint holds only values a queue pair can take.
#include <cstddef>
#include <cstdint>

#include "common/layout_proto.h"
#include "proto/sparsepool.pb.h"
#include "tests/fuzz/fuzz_check.h"
#include "transport/rdma/verbs_endpoint_proto.h"
#include "transport/rdma/verbs_plan.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace sparsepool;
  if (size == 0) return 0;
  const int bytes = static_cast<int>(size - 1);
  if (data[0] % 2 == 0) {
    v1::SequenceLayout message;
    if (!message.ParseFromArray(data + 1, bytes)) return 0;
    auto layout = LayoutFromProto(message);
    if (!layout.ok()) return 0;
    // Walk a bounded sample of entries: huge shapes are legal if they fit the region.
    const uint64_t token_step = layout->tokens / 64 + 1;
    for (uint32_t layer = 0; layer < layout->layers && layer < 64; ++layer) {
      for (uint64_t token = 0; token < layout->tokens; token += token_step) {
        FUZZ_CHECK(layout->EntryOffset(layer, token) + layout->entry_bytes <= layout->region.size_bytes);
      }
    }
  } else {
    v1::VerbsEndpoint message;
    if (!message.ParseFromArray(data + 1, bytes)) return 0;
    auto peer = EndpointFromProto(message);
    if (!peer.ok()) return 0;
    FUZZ_CHECK(peer->endpoint.qp_number > 0 && peer->endpoint.qp_number < (1u << 24));
    FUZZ_CHECK(peer->endpoint.packet_sequence < (1u << 24));
    FUZZ_CHECK(MtuFromBytes(peer->mtu_bytes) != 0);
  }
  return 0;
}
