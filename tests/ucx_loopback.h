// UCX over tcp on this host's loopback only, for tests whose daemon and clients share
// the host. Tests that make test hosts (cluster_netns_test, the load tool's net-cut)
// add veth links with addresses to this namespace while other tests run beside them;
// UCX over tcp lists every interface in a worker's address and may connect through
// one that is gone a moment later ("Destination is unreachable", or gets that never
// answer). The daemons a test starts inherit the setting.
#ifndef SPARSEPOOL_TESTS_UCX_LOOPBACK_H_
#define SPARSEPOOL_TESTS_UCX_LOOPBACK_H_

#include <stdlib.h>

namespace sparsepool::testing {

// `transports`: UCX_TLS ("tcp", or "sm,self" and the like, which loopback does not
// concern but the setting does not hurt).
inline void UseUcxOnLoopback(const char* transports = "tcp") {
  setenv("UCX_TLS", transports, 1);
  setenv("UCX_NET_DEVICES", "lo", 1);
}

}  // namespace sparsepool::testing

#endif  // SPARSEPOOL_TESTS_UCX_LOOPBACK_H_
