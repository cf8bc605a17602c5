#include "common/layout_proto.h"

#include <cstring>

#include "absl/strings/str_cat.h"

namespace sparsepool {

void RegionToProto(const RegionRef& region, v1::RegionInfo* proto) {
  proto->set_index(region.index);
  proto->set_kind(region.kind);
  proto->set_path(region.path);
  proto->set_size_bytes(region.size_bytes);
  proto->set_uuid(region.uuid.data(), region.uuid.size());
  proto->set_ucx_worker_address(region.ucx_worker_address);
  proto->set_ucx_rkey(region.ucx_rkey);
  proto->set_remote_base(region.remote_base);
  proto->set_verbs_rkey(region.verbs_rkey);
}

void LayoutToProto(const SequenceLayout& layout, v1::SequenceLayout* proto) {
  proto->set_sequence_id(layout.sequence_id);
  proto->set_tenant(layout.tenant);
  proto->set_layers(layout.layers);
  proto->set_entry_bytes(layout.entry_bytes);
  proto->set_entry_stride(layout.entry_stride);
  proto->set_page_tokens(layout.page_tokens);
  proto->set_tokens(layout.tokens);
  proto->set_pages_per_layer(layout.pages_per_layer);
  RegionToProto(layout.region, proto->mutable_region());
  proto->mutable_page_offsets()->Assign(layout.page_offsets.begin(), layout.page_offsets.end());
  proto->set_record_offset(layout.record_offset);
}

absl::StatusOr<SequenceLayout> LayoutFromProto(const v1::SequenceLayout& proto) {
  SequenceLayout layout;
  layout.sequence_id = proto.sequence_id();
  layout.tenant = proto.tenant();
  layout.layers = proto.layers();
  layout.entry_bytes = proto.entry_bytes();
  layout.entry_stride = proto.entry_stride();
  layout.page_tokens = proto.page_tokens();
  layout.tokens = proto.tokens();
  layout.pages_per_layer = proto.pages_per_layer();
  const v1::RegionInfo& region = proto.region();
  layout.region.index = region.index();
  layout.region.kind = region.kind();
  layout.region.path = region.path();
  layout.region.size_bytes = region.size_bytes();
  layout.region.ucx_worker_address = region.ucx_worker_address();
  layout.region.ucx_rkey = region.ucx_rkey();
  layout.region.remote_base = region.remote_base();
  layout.region.verbs_rkey = region.verbs_rkey();
  if (region.uuid().size() != layout.region.uuid.size()) {
    return absl::DataLossError(absl::StrCat("region uuid of ", region.uuid().size(),
                                            " bytes in the layout of sequence ",
                                            layout.sequence_id, ", expected 16"));
  }
  std::memcpy(layout.region.uuid.data(), region.uuid().data(), layout.region.uuid.size());
  layout.page_offsets.assign(proto.page_offsets().begin(), proto.page_offsets().end());
  layout.record_offset = proto.record_offset();
  absl::Status valid = ValidateLayout(layout);
  if (!valid.ok()) return valid;
  return layout;
}

}  // namespace sparsepool
