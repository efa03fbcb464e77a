// `chatrec recommend`: top-k items for one user from a model file or a model fitted on the spot.
#include <fmt/format.h>

#include <iostream>

#include "cli/command.h"
#include "cli/model_args.h"
#include "common/error.h"
#include "data/loaders.h"
#include "data/matrix.h"
#include "recommend/recommender.h"
#include "recommend/registry.h"

namespace chatrec::cli {
namespace {

struct RecommendArgs {
  std::string dataset = "ml-100k";
  std::string model;
  std::string model_file;
  std::string user;
  std::size_t k = 10;
  std::vector<std::string> params;
  std::string data_dir;
  std::uint64_t seed = 2023;
};

void run_recommend(const RecommendArgs& a) {
  if (a.model.empty() == a.model_file.empty()) {
    throw InputError("--model", 0, "model",
                     "give exactly one of --model NAME or --model-file FILE");
  }
  auto ds = data::load_named(a.dataset, a.data_dir);
  auto user = ds.find_user(a.user);
  if (!user)
    throw InputError("--user", 0, "user", fmt::format("no user '{}' in {}", a.user, ds.name()));
  data::InteractionMatrix all(ds.num_users(), ds.num_items(), ds.interactions());
  std::unique_ptr<recommend::Recommender> model;
  if (!a.model_file.empty()) {
    model = recommend::Recommender::load(a.model_file);
    if (model->num_items() != ds.num_items() || model->num_users() != ds.num_users()) {
      throw InputError(
          a.model_file, 0, "sizes",
          fmt::format("model was trained on {} users x {} items, dataset {} has {} x {}",
                      model->num_users(), model->num_items(), ds.name(), ds.num_users(),
                      ds.num_items()));
    }
  } else {
    model = recommend::make_recommender(a.model, parse_model_params(a.model, a.params));
    recommend::FitOptions fo;
    fo.seed = a.seed;
    fo.progress = false;
    model->fit(all, fo);
  }
  recommend::RankOptions ro;
  ro.k = a.k;
  auto top = model->recommend(*user, ro);
  std::cout << fmt::format("{} for user {} ({} items seen)\n", model->name(), a.user,
                           all.items_of(*user).size());
  std::cout << fmt::format("{:>4}  {:>8}  {:<60}  {:>10}\n", "rank", "item", "title", "score");
  for (std::size_t r = 0; r < top.size(); ++r) {
    const auto& item = ds.item(top[r].item);
    std::cout << fmt::format("{:>4}  {:>8}  {:<60}  {:>10.4f}\n", r + 1, item.id, item.title,
                             top[r].score);
  }
}

}  // namespace

static Registration recommend_registration(21, [](CLI::App& root) {
  auto args = std::make_shared<RecommendArgs>();
  auto* cmd = root.add_subcommand("recommend", "Top-k recommendations for one user");
  cmd->add_option("--dataset", args->dataset, "ml-100k, games, a MovieLens directory or a CSV file")
      ->capture_default_str();
  cmd->add_option("--model", args->model, "Model name (fitted on all data now)");
  cmd->add_option("--model-file", args->model_file, "Model file written by `chatrec train`");
  cmd->add_option("--user", args->user, "External user id")->required();
  cmd->add_option("-k", args->k, "Number of items")->capture_default_str();
  cmd->add_option("--param", args->params, "Hyper-parameter key=value, repeatable (with --model)");
  args->data_dir = default_data_dir();
  cmd->add_option("--data-dir", args->data_dir, "Directory holding ml-100k/ and amazon-games/")
      ->capture_default_str();
  cmd->add_option("--seed", args->seed, "Random seed")->capture_default_str();
  cmd->callback([args] { run_recommend(*args); });
});

}  // namespace chatrec::cli
