// `chatrec items add|list`: items without interactions (cold start). Added items are stored and
// embedded (the vectors go to the store's embedding cache), so the chat engine retrieves them by
// text similarity.
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <fstream>
#include <iostream>
#include <memory>

#include "chat/cold_start.h"
#include "cli/command.h"
#include "common/error.h"
#include "common/text.h"
#include "llm/factory.h"
#include "llm/language_model.h"
#include "store/store.h"

namespace chatrec::cli {
namespace {

struct ItemsArgs {
  std::string domain = "movies";
  std::string file;
  std::string id, title, description;
  std::vector<std::string> categories;
  int year = 0;
  std::string store = "sqlite:chatrec.db";
  std::string llm = "builtin";
};

data::Item item_from_json(const nlohmann::json& j, const std::string& file, std::size_t line) {
  const auto str = [&](const char* key, bool required) -> std::string {
    if (!j.contains(key)) {
      if (required) throw InputError(file, line, key, "missing");
      return "";
    }
    if (j[key].is_string()) return j[key].get<std::string>();
    if (j[key].is_number_integer()) return std::to_string(j[key].get<long long>());
    throw InputError(file, line, key, "expected a string");
  };
  data::Item item;
  item.id = str("id", true);
  item.title = str("title", true);
  if (item.id.empty()) throw InputError(file, line, "id", "empty");
  if (item.title.empty()) throw InputError(file, line, "title", "empty");
  if (j.contains("categories")) {
    if (!j["categories"].is_array())
      throw InputError(file, line, "categories", "expected a list of strings");
    for (const auto& c : j["categories"]) {
      if (!c.is_string()) throw InputError(file, line, "categories", "expected a list of strings");
      item.categories.push_back(c.get<std::string>());
    }
  }
  if (j.contains("year")) {
    if (!j["year"].is_number_integer()) throw InputError(file, line, "year", "expected an integer");
    item.year = j["year"].get<int>();
  }
  const std::string desc = str("description", false);
  if (!desc.empty()) item.text["description"] = desc;
  data::decode_item_text(item);
  return item;
}

std::vector<data::Item> read_items(const std::string& file) {
  std::ifstream in(file);
  if (!in) throw InputError(file, 0, "", "cannot open");
  std::vector<data::Item> out;
  std::string line;
  std::size_t n = 0;
  while (std::getline(in, line)) {
    ++n;
    if (text::trim(line).empty()) continue;
    const auto j = nlohmann::json::parse(line, nullptr, false);
    if (j.is_discarded() || !j.is_object()) throw InputError(file, n, "", "not a JSON object");
    out.push_back(item_from_json(j, file, n));
  }
  return out;
}

void run_add(const ItemsArgs& a) {
  std::vector<data::Item> items;
  if (!a.file.empty()) {
    items = read_items(a.file);
  } else {
    if (a.id.empty() || a.title.empty())
      throw InputError("--id/--title", 0, "", "give --file or both --id and --title");
    data::Item item;
    item.id = a.id;
    item.title = a.title;
    item.categories = a.categories;
    item.year = a.year;
    if (!a.description.empty()) item.text["description"] = a.description;
    data::decode_item_text(item);
    items.push_back(item);
  }
  for (auto& item : items) item.domain = a.domain;
  std::shared_ptr<store::Store> st(store::open_store(a.store));
  st->upsert_items(items);
  std::shared_ptr<llm::LanguageModel> lm(llm::open_language_model(a.llm));
  chat::EmbeddingCache cache(lm, st);
  std::vector<std::string> texts;
  for (const auto& item : items) texts.push_back(chat::item_text(item));
  chat::Stats stats;
  cache.embed(texts, &stats);
  std::cout << fmt::format("added {} item(s) to domain '{}' in {} (embedded with {}, {} tokens)\n",
                           items.size(), a.domain, a.store, lm->name(), stats.tokens_in);
}

void run_list(const ItemsArgs& a) {
  std::unique_ptr<store::Store> st = store::open_store(a.store);
  for (const auto& item : st->list_items(a.domain)) {
    std::cout << fmt::format("{}\t{}\t{}\t{}\n", item.id, item.title, item.year,
                             text::join(item.categories, "|"));
  }
}

const Registration items_registration(62, [](CLI::App& root) {
  auto args = std::make_shared<ItemsArgs>();
  auto& items = group(root, "items", "Catalogue items without interactions (cold start)");
  auto* add =
      items.add_subcommand("add", "Add items (stored and embedded) from a JSONL file or options");
  add->add_option("--domain", args->domain, "Catalogue domain (movies, games)")
      ->capture_default_str();
  add->add_option("--file", args->file,
                  "JSONL: {\"id\", \"title\", \"categories\": [...], \"year\", \"description\"}");
  add->add_option("--id", args->id, "Item id");
  add->add_option("--title", args->title, "Title");
  add->add_option("--categories", args->categories, "Categories / genres")->delimiter(',');
  add->add_option("--year", args->year, "Release year");
  add->add_option("--description", args->description, "Free-text description");
  add->add_option("--store", args->store, "Store URL")->capture_default_str();
  add->add_option("--llm", args->llm, "Embedding model (LLM spec)")->capture_default_str();
  add->callback([args] { run_add(*args); });
  auto* list = items.add_subcommand("list", "List stored items of a domain");
  list->add_option("--domain", args->domain, "Catalogue domain")->capture_default_str();
  list->add_option("--store", args->store, "Store URL")->capture_default_str();
  list->callback([args] { run_list(*args); });
});

}  // namespace
}  // namespace chatrec::cli
