#include "bench/bench_report.h"

#include <sys/stat.h>
#include <sys/wait.h>

#include <algorithm>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <set>

#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_join.h"
#include "common/units.h"

namespace sparsepool::bench {

std::string FormatSeconds(double s) {
  return s >= 1 ? absl::StrFormat("%.2f s", s) : absl::StrFormat("%.2f ms", s * 1e3);
}

absl::Status WriteFile(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  out.close();
  if (!out) return absl::InternalError(absl::StrCat("cannot write ", path));
  return absl::OkStatus();
}

namespace {

std::string ContextLabel(uint64_t tokens) {
  return tokens % 1024 == 0 ? absl::StrCat(tokens / 1024, "K") : absl::StrCat(tokens);
}


}  // namespace

std::string ResultsCsv(const std::vector<CellResult>& results) {
  std::string out =
      "context,batch,strategy,fetch_p50_ms,fetch_p99_ms,append_p50_ms,link_mib_per_step,entries_per_s,"
      "steps_per_s,layers_fetched,scale,admission_ms,admission_mib,ttft_ms,local_mib\n";
  for (const CellResult& r : results) {
    absl::StrAppendFormat(&out, "%d,%d,%s,%.4f,%.4f,%.4f,%.3f,%.0f,%.4f,%d,%.4f,%.4f,%.3f,%.4f,%.3f\n", r.context,
                          r.batch, r.strategy, r.fetch_p50_s * 1e3, r.fetch_p99_s * 1e3, r.append_p50_s * 1e3,
                          r.link_bytes_per_step / (1 << 20), r.entries_per_s, r.steps_per_s, r.layers_fetched,
                          r.scale, r.admission_s * 1e3, r.admission_bytes / (1 << 20), r.ttft_s * 1e3,
                          r.local_bytes / (1 << 20));
  }
  return out;
}

std::string ResultsMarkdown(const std::vector<CellResult>& results) {
  std::string out =
      "| context | batch | strategy | TTFT (admission + first fetch) | moved at admission | local copy | fetch per "
      "step p50 | p99 | moved per step | entries/s | steps/s | vs first |\n"
      "|---|---|---|---|---|---|---|---|---|---|---|---|\n";
  const CellResult* baseline = nullptr;
  for (const CellResult& r : results) {
    if (baseline == nullptr || baseline->context != r.context || baseline->batch != r.batch) baseline = &r;
    absl::StrAppendFormat(&out, "| %s | %d | %s | %s | %s | %s | %s | %s | %s | %.1f M | %.2f | %.2fx |\n",
                          ContextLabel(r.context), r.batch, r.strategy, FormatSeconds(r.ttft_s),
                          r.admission_bytes > 0 ? FormatBytes(static_cast<uint64_t>(r.admission_bytes)) : "-",
                          r.local_bytes > 0 ? FormatBytes(static_cast<uint64_t>(r.local_bytes)) : "-",
                          FormatSeconds(r.fetch_p50_s), FormatSeconds(r.fetch_p99_s),
                          FormatBytes(static_cast<uint64_t>(r.link_bytes_per_step)), r.entries_per_s / 1e6,
                          r.steps_per_s, r.steps_per_s / baseline->steps_per_s);
  }
  return out;
}

std::string ModelledNicMarkdown(const std::vector<CellResult>& results, const ModelGeometry& model,
                                const NicParams& nic) {
  const double page_bytes = double(model.page_tokens) * model.entry_bytes;
  auto transfer = [&](double bytes, double reads, double round_trips) {
    return round_trips * nic.latency_s + bytes / nic.bytes_per_s + reads / nic.messages_per_s;
  };
  std::string out;
  for (const CellResult& r : results) {
    if (r.strategy.rfind("rdma-", 0) != 0) continue;
    if (out.empty()) {
      out = absl::StrFormat(
          "Modelled, not measured: the rdma-* rows on a NIC of %.0f GB/s, %.0f M reads/s, %.1f us round trip\n\n"
          "| context | batch | strategy | transfer before the first step (admission) | transfer per step |\n"
          "|---|---|---|---|---|\n",
          nic.bytes_per_s / 1e9, nic.messages_per_s / 1e6, nic.latency_s * 1e6);
    }
    const bool per_entry = r.strategy == "rdma-topk";
    const double step_reads = per_entry ? r.link_bytes_per_step / model.entry_bytes : r.link_bytes_per_step / page_bytes;
    const double step = r.link_bytes_per_step > 0 ? transfer(r.link_bytes_per_step, step_reads, model.layers) : 0;
    const double admission =
        r.admission_bytes > 0 ? transfer(r.admission_bytes, r.admission_bytes / page_bytes, 1) : 0;
    absl::StrAppendFormat(&out, "| %s | %d | %s | %s | %s |\n", ContextLabel(r.context), r.batch, r.strategy,
                          admission > 0 ? FormatSeconds(admission) : "-",
                          step > 0 ? FormatSeconds(step) : "none (local gather, measured above)");
  }
  return out;
}

std::string GnuplotScript(const std::vector<CellResult>& results) {
  std::vector<std::string> strategies;
  uint32_t largest_batch = 0;
  uint64_t largest_context = 0;
  std::set<uint64_t> contexts;
  std::set<uint32_t> batches;
  for (const CellResult& r : results) {
    if (std::find(strategies.begin(), strategies.end(), r.strategy) == strategies.end()) {
      strategies.push_back(r.strategy);
    }
    largest_batch = std::max(largest_batch, r.batch);
    largest_context = std::max(largest_context, r.context);
    contexts.insert(r.context);
    batches.insert(r.batch);
  }
  // One inline data block per strategy and view (gnuplot breaks a line at every point
  // a filter drops, so each line gets only its own points). Columns: x, fetch p50 ms,
  // MiB per step, steps/s.
  std::string out =
      "# Draws sparsepool-bench's plots (the same figures as results.csv): gnuplot plots.gp\n"
      "set terminal pngcairo size 900,560 font ',11'\n"
      "set key outside right top\n"
      "set grid\n"
      "set offsets graph 0.04, graph 0.04, 0, 0\n";
  auto blocks = [&](const std::string& view, auto keep, auto x) {
    for (size_t i = 0; i < strategies.size(); ++i) {
      absl::StrAppend(&out, "$", view, i, " << EOD\n");
      for (const CellResult& r : results) {
        if (r.strategy != strategies[i] || !keep(r)) continue;
        absl::StrAppendFormat(&out, "%d %.4f %.3f %.4f\n", x(r), r.fetch_p50_s * 1e3,
                              r.link_bytes_per_step / (1 << 20), r.steps_per_s);
      }
      absl::StrAppend(&out, "EOD\n");
    }
  };
  auto plot = [&](const std::string& view, const std::string& file, const std::string& title,
                  const std::string& ylabel, int column) {
    absl::StrAppend(&out, "set output '", file, "'\nset title '", title, "'\nset ylabel '", ylabel, "'\nplot ");
    std::vector<std::string> lines;
    for (size_t i = 0; i < strategies.size(); ++i) {
      lines.push_back(absl::StrCat("$", view, i, " using 1:", column, " with linespoints lw 2 pt ", 5 + i,
                                   " title '", strategies[i], "'"));
    }
    absl::StrAppend(&out, absl::StrJoin(lines, ", \\\n     "), "\n");
  };
  if (contexts.size() > 1 || batches.size() <= 1) {
    blocks("by_context", [&](const CellResult& r) { return r.batch == largest_batch; },
           [](const CellResult& r) { return r.context; });
    absl::StrAppend(&out, "set logscale x 2\nset logscale y\nset xlabel 'context (tokens)'\n");
    const std::string batch = absl::StrCat(" (batch ", largest_batch, ")");
    plot("by_context", "fetch_latency.png", "fetch time per decode step, p50" + batch, "ms per step (all layers)", 2);
    plot("by_context", "link_bytes.png", "bytes crossing the link per decode step" + batch, "MiB per step", 3);
    plot("by_context", "steps_per_second.png", "decode steps per second, fetch-bound" + batch, "steps/s", 4);
  }
  if (batches.size() > 1) {
    blocks("by_batch", [&](const CellResult& r) { return r.context == largest_context; },
           [](const CellResult& r) { return uint64_t{r.batch}; });
    absl::StrAppend(&out, "set logscale x 2\nset logscale y\nset xlabel 'batch (requests)'\n");
    plot("by_batch", "steps_per_second_by_batch.png",
         absl::StrCat("decode steps per second by batch (context ", ContextLabel(largest_context), ")"), "steps/s",
         4);
  }
  return out;
}

absl::Status WriteReport(const std::vector<CellResult>& results, const std::string& header, const std::string& dir,
                         const std::string& appendix) {
  if (mkdir(dir.c_str(), 0755) != 0 && errno != EEXIST) {
    return absl::InternalError(absl::StrCat("cannot create ", dir, ": ", std::strerror(errno)));
  }
  const std::string markdown =
      absl::StrCat(header, "\n\n", ResultsMarkdown(results), appendix.empty() ? "" : "\n", appendix);
  for (const auto& [name, text] : {std::pair<std::string, std::string>{"results.csv", ResultsCsv(results)},
                                   {"results.md", markdown},
                                   {"plots.gp", GnuplotScript(results)}}) {
    if (absl::Status s = WriteFile(dir + "/" + name, text); !s.ok()) return s;
  }
  return RunGnuplot(dir);
}

absl::Status RunGnuplot(const std::string& dir) {
  const std::string command = absl::StrCat("cd '", dir, "' && gnuplot plots.gp 2>gnuplot.log");
  const int rc = std::system(command.c_str());
  if (rc != 0) {
    return absl::FailedPreconditionError(absl::StrCat(
        "gnuplot did not draw the plots (exit ", WIFEXITED(rc) ? WEXITSTATUS(rc) : rc, "; see ", dir,
        "/gnuplot.log; is gnuplot installed?); the CSV and markdown are written"));
  }
  return absl::OkStatus();
}

}  // namespace sparsepool::bench
