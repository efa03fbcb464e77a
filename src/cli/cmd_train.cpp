// `chatrec train`: fits one model on all of a dataset's interactions and saves it as a model file.
#include <fmt/format.h>

#include <chrono>
#include <filesystem>
#include <iostream>

#include "cli/command.h"
#include "cli/model_args.h"
#include "data/loaders.h"
#include "data/matrix.h"
#include "recommend/recommender.h"
#include "recommend/registry.h"

namespace chatrec::cli {
namespace {

struct TrainArgs {
  std::string dataset = "ml-100k";
  std::string model;
  std::string out;
  std::vector<std::string> params;
  std::string data_dir;
  std::uint64_t seed = 2023;
  int threads = 0;
};

void run_train(const TrainArgs& a) {
  auto ds = data::load_named(a.dataset, a.data_dir);
  data::InteractionMatrix all(ds.num_users(), ds.num_items(), ds.interactions());
  auto model = recommend::make_recommender(a.model, parse_model_params(a.model, a.params));
  recommend::FitOptions fo;
  fo.seed = a.seed;
  fo.threads = a.threads;
  auto t0 = std::chrono::steady_clock::now();
  model->fit(all, fo);
  double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::filesystem::path out(a.out);
  if (out.has_parent_path()) std::filesystem::create_directories(out.parent_path());
  model->save(a.out);
  std::cout << fmt::format("trained {} on {} ({} users, {} items, {} interactions) in {:.2f} s\n",
                           model->name(), ds.name(), ds.num_users(), ds.num_items(), all.nnz(),
                           seconds);
  for (const auto& [k, v] : model->params()) std::cout << fmt::format("  {} = {}\n", k, v);
  std::cout << fmt::format("saved {} ({} bytes)\n", a.out, std::filesystem::file_size(out));
}

}  // namespace

static Registration train_registration(20, [](CLI::App& root) {
  auto args = std::make_shared<TrainArgs>();
  auto* cmd =
      root.add_subcommand("train", "Fit a model on all of a dataset and save it to a model file");
  cmd->add_option("--dataset", args->dataset, "ml-100k, games, a MovieLens directory or a CSV file")
      ->capture_default_str();
  cmd->add_option("--model", args->model, "Model name")->required();
  cmd->add_option("--out", args->out, "Model file to write")->required();
  cmd->add_option("--param", args->params, "Hyper-parameter key=value, repeatable");
  args->data_dir = default_data_dir();
  cmd->add_option("--data-dir", args->data_dir, "Directory holding ml-100k/ and amazon-games/")
      ->capture_default_str();
  cmd->add_option("--seed", args->seed, "Random seed")->capture_default_str();
  cmd->add_option("--threads", args->threads, "Threads (0 = all cores)")->capture_default_str();
  cmd->callback([args] { run_train(*args); });
});

}  // namespace chatrec::cli
