// `chatrec bench train`: fit time, peak memory and full-catalogue ranking time per model on a
// dataset. Each model runs in its own forked child, so its peak RSS (getrusage of the child) is its
// own and not the maximum of everything fitted before it. The parent's peak RSS while loading the
// data is printed as the baseline; a child's peak includes whatever of that data it keeps resident.
#include <fmt/format.h>
#include <omp.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <iostream>
#include <optional>

#include "cli/command.h"
#include "cli/model_args.h"
#include "common/text.h"
#include "data/loaders.h"
#include "data/matrix.h"
#include "data/splits.h"
#include "recommend/recommender.h"
#include "recommend/registry.h"

namespace chatrec::cli {
namespace {

struct BenchTrainArgs {
  std::string models = "all";
  std::string dataset = "ml-100k";
  std::vector<std::string> params;
  std::string data_dir;
  std::size_t k = 20;
  int threads = 0;
};

struct ChildResult {
  double fit_seconds = -1;
  double rank_seconds = -1;
  long peak_rss_kb = 0;
  char error[512] = {0};
};

long peak_rss_kb() {
  rusage ru{};
  getrusage(RUSAGE_SELF, &ru);
  return ru.ru_maxrss;  // kilobytes on Linux
}

ChildResult bench_one(const std::string& name, const data::Dataset& ds,
                      const data::InteractionMatrix& all,
                      const std::vector<data::Interaction>* validation, const BenchTrainArgs& a) {
  ChildResult r;
  auto model = recommend::make_recommender(name, parse_model_params(name, a.params));
  recommend::FitOptions fo;
  fo.threads = a.threads;
  fo.progress = false;
  fo.validation = validation;
  auto t0 = std::chrono::steady_clock::now();
  model->fit(all, fo);
  r.fit_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  auto t1 = std::chrono::steady_clock::now();
  const auto users = static_cast<std::int64_t>(ds.num_users());
  std::size_t total = 0;
  int nthreads = a.threads > 0 ? a.threads : omp_get_max_threads();
#pragma omp parallel for schedule(dynamic, 16) num_threads(nthreads) reduction(+ : total)
  for (std::int64_t u = 0; u < users; ++u) {
    recommend::RankOptions ro;
    ro.k = a.k;
    total += model->recommend(static_cast<data::UserIndex>(u), ro).size();
  }
  r.rank_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t1).count();
  (void)total;
  r.peak_rss_kb = peak_rss_kb();
  return r;
}

void run_bench_train(const BenchTrainArgs& a) {
  std::vector<std::string> models;
  if (a.models == "all") {
    models = recommend::recommender_names();
  } else {
    for (auto& m : text::split(a.models, ',')) {
      if (!m.empty()) models.push_back(m);
    }
  }
  auto ds = data::load_named(a.dataset, a.data_dir);
  // Games is a sequential benchmark: models fit on games-seq's training split (each user's last
  // item held out) with the games.valid.inter targets to stop on, as `chatrec eval` fits them, so
  // a model with early stopping is timed to its best validation epoch. Other datasets: everything.
  const bool sequential = ds.name() == "games";
  std::optional<data::Split> split;
  if (sequential) split = data::split_leave_last_out(ds);
  data::InteractionMatrix all(ds.num_users(), ds.num_items(),
                              sequential ? split->train : ds.interactions());
  long baseline = peak_rss_kb();
  std::cout << fmt::format(
      "{}: {} users, {} items, {} interactions{}; parent peak RSS while loading {:.1f} MiB\n",
      ds.name(), ds.num_users(), ds.num_items(), all.nnz(),
      sequential
          ? fmt::format(" (games-seq training split, {} validation targets)", split->valid.size())
          : std::string(),
      baseline / 1024.0);
  std::cout << fmt::format("{:<12} {:>10} {:>14} {:>12} {:>14}\n", "model", "fit s",
                           fmt::format("rank top-{} s", a.k), "users/s", "peak RSS MiB");
  std::cout.flush();
  for (const auto& name : models) {
    int fds[2];
    if (pipe(fds) != 0) throw std::runtime_error(std::string("pipe: ") + std::strerror(errno));
    pid_t pid = fork();
    if (pid < 0) throw std::runtime_error(std::string("fork: ") + std::strerror(errno));
    if (pid == 0) {
      close(fds[0]);
      ChildResult r;
      try {
        r = bench_one(name, ds, all, sequential ? &split->valid : nullptr, a);
      } catch (const std::exception& e) {
        std::snprintf(r.error, sizeof r.error, "%s", e.what());
      }
      ssize_t written = write(fds[1], &r, sizeof r);
      _exit(written == static_cast<ssize_t>(sizeof r) ? 0 : 1);
    }
    close(fds[1]);
    ChildResult r;
    ssize_t got = read(fds[0], &r, sizeof r);
    close(fds[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    if (got != static_cast<ssize_t>(sizeof r)) {
      std::cout << fmt::format("{:<12} failed (child exit status {})\n", name, status);
    } else if (r.error[0]) {
      std::cout << fmt::format("{:<12} failed: {}\n", name, r.error);
    } else {
      std::cout << fmt::format(
          "{:<12} {:>10.2f} {:>14.2f} {:>12.0f} {:>14.1f}\n", name, r.fit_seconds, r.rank_seconds,
          static_cast<double>(ds.num_users()) / r.rank_seconds, r.peak_rss_kb / 1024.0);
    }
    std::cout.flush();
  }
}

}  // namespace

static Registration bench_train_registration(90, [](CLI::App& root) {
  auto args = std::make_shared<BenchTrainArgs>();
  auto& bench = group(root, "bench", "Benchmarks");
  auto* cmd =
      bench.add_subcommand("train", "Fit time, peak RSS and top-k ranking time of each model");
  cmd->add_option("--models", args->models, "Comma-separated model names, or 'all'")
      ->capture_default_str();
  cmd->add_option("--dataset", args->dataset, "ml-100k, games, ...")->capture_default_str();
  cmd->add_option("--param", args->params,
                  "Hyper-parameter key=value or model.key=value, repeatable");
  args->data_dir = default_data_dir();
  cmd->add_option("--data-dir", args->data_dir, "Directory holding ml-100k/ and amazon-games/")
      ->capture_default_str();
  cmd->add_option("-k", args->k, "Ranked list length")->capture_default_str();
  cmd->add_option("--threads", args->threads, "Threads (0 = all cores)")->capture_default_str();
  cmd->callback([args] { run_bench_train(*args); });
});

}  // namespace chatrec::cli
