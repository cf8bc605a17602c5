// The UCX worker of one data-plane domain (service/region_access.h), run as a process
// of its own: the daemon starts its own executable again with kUcxDomainServerFlag for
// each domain (service/ucx_publisher.h). UCX's tcp and sm transports emulate RMA in
// software and check no remote key, so a peer of a worker can read and write any
// address of the worker's process; this process maps nothing but its domain's regions,
// so that is all a peer can reach.
//
// Command line, after the flag: PARENT_PID, then one INDEX:KIND:BYTES:PATH per region
// (KIND as RegionKindName writes it; PATH last, as it may hold ':').
// Handshake, one line each on stdout (a pipe from the parent):
//   worker HEX_ADDRESS
//   region INDEX BASE HEX_RKEY      (BASE: the region's address here, decimal)
//   ready
// or `error CODE MESSAGE` (CODE: an absl::StatusCode number) and exit status 1.
// Then it serves until its stdin (a pipe from the parent) is closed or the parent
// dies, and exits 0. Anything else it prints (UCX's warnings) goes to stderr.
#ifndef SPARSEPOOL_SERVICE_UCX_DOMAIN_SERVER_H_
#define SPARSEPOOL_SERVICE_UCX_DOMAIN_SERVER_H_

namespace sparsepool {

inline constexpr char kUcxDomainServerFlag[] = "--serve_ucx_domain";

// The process's main when argv[1] is kUcxDomainServerFlag; returns its exit status.
int RunUcxDomainServer(int argc, char** argv);

}  // namespace sparsepool

#endif  // SPARSEPOOL_SERVICE_UCX_DOMAIN_SERVER_H_
