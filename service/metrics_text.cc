#include "service/metrics_text.h"

#include <cstdint>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"

namespace sparsepool {
namespace {

// One metric family: its HELP and TYPE lines, then samples appended by the caller.
void Family(std::string& out, absl::string_view name, absl::string_view type,
            absl::string_view help) {
  absl::StrAppend(&out, "# HELP ", name, " ", help, "\n# TYPE ", name, " ", type, "\n");
}

void Sample(std::string& out, absl::string_view name, absl::string_view labels, uint64_t value) {
  absl::StrAppend(&out, name, labels, " ", value, "\n");
}

void Single(std::string& out, absl::string_view name, absl::string_view type,
            absl::string_view help, uint64_t value) {
  Family(out, name, type, help);
  Sample(out, name, "", value);
}

}  // namespace

std::string EscapeLabelValue(absl::string_view value) {
  std::string out;
  out.reserve(value.size());
  for (char c : value) {
    if (c == '\\') {
      out += "\\\\";
    } else if (c == '"') {
      out += "\\\"";
    } else if (c == '\n') {
      out += "\\n";
    } else {
      out += c;
    }
  }
  return out;
}

std::string MetricsText(const DaemonFigures& f) {
  const PoolStats& s = f.pool;
  std::string out;
  // Per region: the labels name it as sparsepoolctl and the layouts do.
  struct RegionFigure {
    const char* name;
    const char* help;
    uint64_t RegionUsage::*field;
  };
  const RegionFigure region_figures[] = {
      {"sparsepool_region_capacity_bytes", "Bytes of the region that sequences can use.",
       &RegionUsage::capacity_bytes},
      {"sparsepool_region_used_bytes", "Bytes held by live sequences.", &RegionUsage::used_bytes},
      {"sparsepool_region_reclaimable_bytes",
       "Bytes held by released or lease-expired sequences, reused when a request needs room.",
       &RegionUsage::reclaimable_bytes},
      {"sparsepool_region_free_bytes", "Bytes no sequence holds.", &RegionUsage::free_bytes},
  };
  for (const RegionFigure& figure : region_figures) {
    Family(out, figure.name, "gauge", figure.help);
    for (const RegionUsage& usage : s.regions) {
      Sample(out, figure.name,
             absl::StrCat("{region=\"", usage.region.index, "\",kind=\"",
                          EscapeLabelValue(usage.region.kind), "\",path=\"",
                          EscapeLabelValue(usage.region.path), "\"}"),
             usage.*figure.field);
    }
  }
  Family(out, "sparsepool_tenant_used_bytes", "gauge",
         "Bytes held by a tenant's live sequences (the 64 tenants holding the most).");
  for (const TenantStats& t : s.tenants) {
    Sample(out, "sparsepool_tenant_used_bytes", absl::StrCat("{tenant=\"", EscapeLabelValue(t.tenant), "\"}"), t.bytes);
  }
  Family(out, "sparsepool_tenant_live_sequences", "gauge", "A tenant's live sequences (the same tenants).");
  for (const TenantStats& t : s.tenants) {
    Sample(out, "sparsepool_tenant_live_sequences", absl::StrCat("{tenant=\"", EscapeLabelValue(t.tenant), "\"}"),
           t.sequences);
  }
  Single(out, "sparsepool_live_sequences", "gauge", "Sequences that are live.", s.live_sequences);
  Single(out, "sparsepool_reclaimable_sequences", "gauge",
         "Sequences released or lease-expired, not yet evicted.", s.reclaimable_sequences);
  Single(out, "sparsepool_leases", "gauge", "Clients holding a lease.", s.leases);
  Single(out, "sparsepool_requests_waiting_for_memory", "gauge",
         "Create or Extend requests waiting for memory in its reuse grace.",
         f.requests_waiting_for_memory);
  Single(out, "sparsepool_slow_calls_queued", "gauge",
         "Create or Extend requests queued for the slow-work threads (tenants take turns).", f.slow_work.queued);
  Single(out, "sparsepool_slow_calls_running", "gauge", "Create or Extend requests on a slow-work thread now.",
         f.slow_work.running);
  Single(out, "sparsepool_slow_calls_total", "counter", "Create or Extend requests the slow-work threads ran.",
         f.slow_work.done);
  Single(out, "sparsepool_slow_calls_refused_total", "counter",
         "Create or Extend requests refused because their tenant's queue (or the whole queue) was full.",
         f.slow_work.refused);
  Single(out, "sparsepool_sequences_created_total", "counter",
         "Sequences created since the daemon started.", s.sequences_created);
  Single(out, "sparsepool_sequences_evicted_total", "counter",
         "Reclaimable sequences evicted to make room since the daemon started.",
         s.sequences_evicted);
  Single(out, "sparsepool_leases_expired_total", "counter",
         "Client leases that ran out since the daemon started.", s.leases_expired);
  Single(out, "sparsepool_sequences_recovered", "gauge",
         "Sequences found in the regions when the daemon started.", s.sequences_recovered);
  Family(out, "sparsepool_uptime_seconds", "gauge", "Seconds since the daemon started.");
  absl::StrAppend(&out, "sparsepool_uptime_seconds ",
                  absl::StrFormat("%.3f", absl::ToDoubleSeconds(f.uptime)), "\n");
  return out;
}

}  // namespace sparsepool
