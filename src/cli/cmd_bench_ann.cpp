// `chatrec bench ann`: the cold-start vector index at catalogue sizes chatrec's data sets do not
// reach. A seeded synthetic catalogue (titles of words from a skewed vocabulary, embedded by the
// mock model's hashed bag of words, 64 dimensions) goes into an exhaustive index and into one that
// turns approximate (IVF) past --min-items; the same new queries then run on both: build time,
// the calibration's probes and recall, the recall@10 of new queries against the exhaustive
// search, and search latency p50/p99 of each.
#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <iostream>
#include <limits>
#include <random>

#include "chat/cold_start.h"
#include "cli/bench_stats.h"
#include "cli/command.h"
#include "common/progress.h"
#include "llm/mock_model.h"

namespace chatrec::cli {
namespace {

struct BenchAnnArgs {
  std::size_t items = 1000000;
  std::size_t min_items = 100000;
  std::size_t queries = 200;
  double target_recall = 0.95;
};

std::vector<std::pair<data::ItemIndex, data::Item>> synthetic(std::size_t first, std::size_t n,
                                                              std::mt19937_64& rng) {
  static const std::vector<double> weights = [] {
    std::vector<double> w;
    for (int i = 1; i <= 2000; ++i) w.push_back(1.0 / i);
    return w;
  }();
  std::discrete_distribution<int> word(weights.begin(), weights.end());
  std::vector<std::pair<data::ItemIndex, data::Item>> items;
  items.reserve(n);
  for (std::size_t i = first; i < first + n; ++i) {
    data::Item item;
    for (int k = 0; k < 5; ++k) item.title += "w" + std::to_string(word(rng)) + " ";
    items.emplace_back(static_cast<data::ItemIndex>(i), std::move(item));
  }
  return items;
}

void run_bench(const BenchAnnArgs& a) {
  auto lm = std::make_shared<llm::MockModel>();
  chat::ColdStartIndex exact(lm, nullptr,
                             chat::ApproximateSearch{std::numeric_limits<std::size_t>::max()});
  chat::ColdStartIndex approx(lm, nullptr,
                              chat::ApproximateSearch{a.min_items, a.target_recall, 200});
  std::mt19937_64 rng(2023);
  constexpr std::size_t kBatch = 50000;
  Progress progress("index", a.items, "items");
  double exact_s = 0, approx_s = 0;
  for (std::size_t first = 0; first < a.items; first += kBatch) {
    const auto items = synthetic(first, std::min(kBatch, a.items - first), rng);
    auto t0 = std::chrono::steady_clock::now();
    exact.add("catalogue", items, false, nullptr);
    auto t1 = std::chrono::steady_clock::now();
    approx.add("catalogue", items, false, nullptr);
    auto t2 = std::chrono::steady_clock::now();
    exact_s += std::chrono::duration<double>(t1 - t0).count();
    approx_s += std::chrono::duration<double>(t2 - t1).count();
    progress.advance(items.size());
  }
  progress.finish();
  const chat::IndexDescription d = approx.describe("catalogue");
  std::cout << fmt::format(
      "{} vectors of {} dimensions; adding (embedding included): exhaustive {:.1f} s, "
      "approximate {:.1f} s\n",
      d.vectors, lm->embedding_size(), exact_s, approx_s);
  if (d.approximate) {
    std::cout << fmt::format(
        "approximate index: IVF-Flat, {} lists, {} probes, built in {:.1f} s at {} vectors; "
        "calibration recall@10 {:.3f} (target {:.2f})\n",
        d.lists, d.probes, d.build_seconds, a.min_items, d.calibrated_recall, a.target_recall);
  } else {
    std::cout << "approximate index: not built (fewer items than --min-items)\n";
  }
  const auto queries = synthetic(a.items, a.queries, rng);
  std::vector<double> exact_ms, approx_ms;
  double found = 0, wanted = 0;
  for (const auto& [_, q] : queries) {
    const std::vector<float> v = approx.embed_query(chat::item_text(q), nullptr);
    auto t0 = std::chrono::steady_clock::now();
    const auto truth = exact.search("catalogue", v, 10, false, nullptr);
    auto t1 = std::chrono::steady_clock::now();
    const auto got = approx.search("catalogue", v, 10, false, nullptr);
    auto t2 = std::chrono::steady_clock::now();
    exact_ms.push_back(std::chrono::duration<double, std::milli>(t1 - t0).count());
    approx_ms.push_back(std::chrono::duration<double, std::milli>(t2 - t1).count());
    if (truth.empty()) continue;
    const float bar = truth.back().similarity;
    for (const auto& r : got) found += r.similarity >= bar - 1e-5f ? 1 : 0;
    wanted += static_cast<double>(truth.size());
  }
  std::cout << fmt::format(
      "{} new queries, top 10: recall@10 of the approximate index {:.3f} (ties by similarity "
      "count as found)\n",
      queries.size(), wanted > 0 ? found / wanted : 1.0);
  std::cout << "| index | p50 ms | p99 ms |\n|---|---|---|\n";
  std::cout << fmt::format("| exhaustive | {:.2f} | {:.2f} |\n", percentile(exact_ms, 0.5),
                           percentile(exact_ms, 0.99));
  std::cout << fmt::format("| approximate | {:.2f} | {:.2f} |\n", percentile(approx_ms, 0.5),
                           percentile(approx_ms, 0.99));
}

static Registration bench_ann_registration(96, [](CLI::App& root) {
  CLI::App& bench = group(root, "bench", "Benchmarks");
  auto args = std::make_shared<BenchAnnArgs>();
  auto* cmd = bench.add_subcommand(
      "ann", "The cold-start vector index at a million items: approximate vs exhaustive search");
  cmd->add_option("--items", args->items, "Synthetic catalogue size")->capture_default_str();
  cmd->add_option("--min-items", args->min_items, "Size past which the index turns approximate")
      ->capture_default_str();
  cmd->add_option("--queries", args->queries, "New queries to time and score")
      ->capture_default_str();
  cmd->add_option("--target-recall", args->target_recall, "Recall@10 the calibration aims for")
      ->capture_default_str();
  cmd->callback([args] { run_bench(*args); });
});

}  // namespace
}  // namespace chatrec::cli
