// Fit time per model on ML-100K (the ml100k-topk training split, seed 2023) and full-catalogue
// top-20 for every user. Run: build/bench/bench_recommend [--benchmark_filter=Fit/ease]
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <filesystem>
#include <memory>

#include "data/loaders.h"
#include "data/splits.h"
#include "recommend/recommender.h"
#include "recommend/registry.h"

namespace {

using namespace chatrec;

struct Ml100k {
  data::Dataset ds;
  data::InteractionMatrix train;
};

const Ml100k* ml100k() {
  static std::unique_ptr<Ml100k> data = [] {
    const char* env = std::getenv("CHATREC_DATA_DIR");
    std::filesystem::path dir = std::filesystem::path(env ? env : "../shared/data") / "ml-100k";
    if (!std::filesystem::exists(dir / "u.data")) return std::unique_ptr<Ml100k>();
    auto out = std::make_unique<Ml100k>();
    out->ds = data::load_movielens_100k(dir);
    auto split = data::split_topk_holdout(out->ds, 2023);
    out->train = data::InteractionMatrix(out->ds.num_users(), out->ds.num_items(), split.train);
    return out;
  }();
  return data.get();
}

recommend::FitOptions quiet() {
  recommend::FitOptions o;
  o.progress = false;
  return o;
}

void BM_Fit(benchmark::State& state, const std::string& name) {
  const auto* d = ml100k();
  if (!d) {
    state.SkipWithError("ML-100K not found (set CHATREC_DATA_DIR)");
    return;
  }
  for (auto _ : state) {
    auto model = recommend::make_recommender(name);
    model->fit(d->train, quiet());
    benchmark::DoNotOptimize(model.get());
  }
}

void BM_Top20AllUsers(benchmark::State& state, const std::string& name) {
  const auto* d = ml100k();
  if (!d) {
    state.SkipWithError("ML-100K not found (set CHATREC_DATA_DIR)");
    return;
  }
  auto model = recommend::make_recommender(name);
  model->fit(d->train, quiet());
  recommend::RankOptions o;
  o.k = 20;
  for (auto _ : state) {
    for (data::UserIndex u = 0; u < d->train.num_users(); ++u)
      benchmark::DoNotOptimize(model->recommend(u, o));
  }
  state.SetItemsProcessed(static_cast<std::int64_t>(state.iterations() * d->train.num_users()));
}

int register_all() {
  for (const auto& name : recommend::recommender_names()) {
    if (name == "lightgcn" || name == "blend")
      continue;  // minutes / many fits; timed by `chatrec bench train`
    benchmark::RegisterBenchmark(("Fit/" + name).c_str(), BM_Fit, name)
        ->Unit(benchmark::kMillisecond)
        ->Iterations(3);
  }
  for (const char* name : {"popularity", "itemknn", "mf", "ease", "transition"}) {
    benchmark::RegisterBenchmark((std::string("Top20AllUsers/") + name).c_str(), BM_Top20AllUsers,
                                 name)
        ->Unit(benchmark::kMillisecond);
  }
  return 0;
}
const int registered = register_all();

}  // namespace

BENCHMARK_MAIN();
