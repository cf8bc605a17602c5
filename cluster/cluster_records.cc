#include "cluster/cluster_records.h"

#include <google/protobuf/util/json_util.h>

#include "absl/strings/str_cat.h"

namespace sparsepool::cluster {

std::string NodesPrefix(absl::string_view prefix) { return absl::StrCat(prefix, "/nodes/"); }
std::string NodeKey(absl::string_view prefix, absl::string_view name) { return absl::StrCat(NodesPrefix(prefix), name); }
std::string NodeIdKey(absl::string_view prefix, uint32_t node_id) { return absl::StrCat(prefix, "/node_ids/", node_id); }
std::string RegionKey(absl::string_view prefix, absl::string_view uuid_hex) {
  return absl::StrCat(prefix, "/regions/", uuid_hex);
}

std::string NodeToJson(const NodeRecord& node) {
  std::string json;
  google::protobuf::util::JsonPrintOptions options;
  options.preserve_proto_field_names = true;
  (void)google::protobuf::util::MessageToJsonString(node, &json, options);  // cannot fail for a valid message
  return json;
}

absl::StatusOr<NodeRecord> NodeFromJson(absl::string_view json, absl::string_view key) {
  NodeRecord node;
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = true;  // records of newer daemons still read
  const auto parsed = google::protobuf::util::JsonStringToMessage(std::string(json), &node, options);
  if (!parsed.ok()) {
    return absl::InvalidArgumentError(absl::StrCat("etcd key ", key, " holds no node record: ", parsed.ToString()));
  }
  return node;
}

absl::StatusOr<std::vector<NodeRecord>> ReadNodes(EtcdClient& etcd, absl::string_view prefix) {
  auto values = etcd.GetPrefix(NodesPrefix(prefix));
  if (!values.ok()) return values.status();
  std::vector<NodeRecord> nodes;
  for (const EtcdKeyValue& kv : *values) {
    // A record that does not parse names no node anyone can reach: left out, rather
    // than blinding every client to the others.
    auto node = NodeFromJson(kv.value, kv.key);
    if (node.ok()) nodes.push_back(*std::move(node));
  }
  return nodes;
}

}  // namespace sparsepool::cluster
