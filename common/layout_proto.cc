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
  for (const RegionRef& stripe : layout.stripe_regions) RegionToProto(stripe, proto->add_stripe_regions());
  auto* offsets = layout.stripe_regions.empty() ? proto->mutable_page_offsets() : proto->mutable_striped_page_offsets();
  offsets->Assign(layout.page_offsets.begin(), layout.page_offsets.end());
  proto->set_record_offset(layout.record_offset);
}

namespace {

absl::StatusOr<RegionRef> RegionFromProto(const v1::RegionInfo& proto, uint64_t sequence_id) {
  RegionRef region;
  region.index = proto.index();
  region.kind = proto.kind();
  region.path = proto.path();
  region.size_bytes = proto.size_bytes();
  region.ucx_worker_address = proto.ucx_worker_address();
  region.ucx_rkey = proto.ucx_rkey();
  region.remote_base = proto.remote_base();
  region.verbs_rkey = proto.verbs_rkey();
  if (proto.uuid().size() != region.uuid.size()) {
    return absl::DataLossError(absl::StrCat("region uuid of ", proto.uuid().size(),
                                            " bytes in the layout of sequence ", sequence_id, ", expected 16"));
  }
  std::memcpy(region.uuid.data(), proto.uuid().data(), region.uuid.size());
  return region;
}

}  // namespace

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
  auto region = RegionFromProto(proto.region(), layout.sequence_id);
  if (!region.ok()) return region.status();
  layout.region = *std::move(region);
  for (const v1::RegionInfo& stripe_proto : proto.stripe_regions()) {
    auto stripe = RegionFromProto(stripe_proto, layout.sequence_id);
    if (!stripe.ok()) return stripe.status();
    layout.stripe_regions.push_back(*std::move(stripe));
  }
  // A striped layout's offsets are in their own field, an unstriped one's in page_offsets.
  const auto& offsets = layout.stripe_regions.empty() ? proto.page_offsets() : proto.striped_page_offsets();
  const auto& unused = layout.stripe_regions.empty() ? proto.striped_page_offsets() : proto.page_offsets();
  if (!unused.empty()) {
    return absl::DataLossError(absl::StrCat("the layout of sequence ", layout.sequence_id, " has ",
                                            layout.stripe_regions.empty() ? "striped page offsets but no stripe regions"
                                                                          : "stripe regions but unstriped page offsets"));
  }
  layout.page_offsets.assign(offsets.begin(), offsets.end());
  layout.record_offset = proto.record_offset();
  absl::Status valid = ValidateLayout(layout);
  if (!valid.ok()) return valid;
  return layout;
}

}  // namespace sparsepool
