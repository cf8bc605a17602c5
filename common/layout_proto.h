// Conversions between the control plane's SequenceLayout message and the data plane's
// plain struct.
#ifndef SPARSEPOOL_COMMON_LAYOUT_PROTO_H_
#define SPARSEPOOL_COMMON_LAYOUT_PROTO_H_

#include "absl/status/statusor.h"
#include "common/layout.h"
#include "proto/sparsepool.pb.h"

namespace sparsepool {

void LayoutToProto(const SequenceLayout& layout, v1::SequenceLayout* proto);
// Fails when the message is malformed (a uuid of the wrong size, an invalid layout).
absl::StatusOr<SequenceLayout> LayoutFromProto(const v1::SequenceLayout& proto);

void RegionToProto(const RegionRef& region, v1::RegionInfo* proto);

}  // namespace sparsepool

#endif  // SPARSEPOOL_COMMON_LAYOUT_PROTO_H_
