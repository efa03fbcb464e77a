#include "instruct/generator.h"

#include <fmt/format.h>

#include <algorithm>
#include <chrono>
#include <fstream>
#include <nlohmann/json.hpp>
#include <optional>
#include <unordered_map>
#include <unordered_set>

#include "common/error.h"
#include "common/hash.h"
#include "common/progress.h"
#include "common/random.h"
#include "data/splits.h"
#include "instruct/candidate_ranker.h"

namespace chatrec::instruct {

namespace {
using data::ItemIndex;
using data::UserIndex;
using nlohmann::json;

std::uint64_t mix(std::uint64_t a, std::uint64_t b) {
  // splitmix64 finaliser over a combination, so per-user streams are independent of visiting order.
  std::uint64_t z = a + 0x9E3779B97F4A7C15ULL * (b + 1);
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
  return z ^ (z >> 31);
}

// Chronological items per user, ordered exactly as split_leave_last_out orders them.
std::vector<std::vector<ItemIndex>> sequences(const data::Dataset& ds) {
  std::vector<std::vector<std::size_t>> rows(ds.num_users());
  const auto& all = ds.interactions();
  for (std::size_t k = 0; k < all.size(); ++k) rows[all[k].user].push_back(k);
  std::vector<std::vector<ItemIndex>> out(ds.num_users());
  for (UserIndex u = 0; u < rows.size(); ++u) {
    auto& r = rows[u];
    std::stable_sort(r.begin(), r.end(),
                     [&](auto a, auto b) { return all[a].timestamp < all[b].timestamp; });
    out[u].reserve(r.size());
    for (auto k : r) out[u].push_back(all[k].item);
  }
  return out;
}

std::string categories_text(const data::Item& item) {
  std::string out;
  for (const auto& c : item.categories) {
    if (c.empty() || c == "unknown") continue;
    if (!out.empty()) out += ", ";
    out += c;
  }
  return out;
}

std::string trim_reply(std::string s) {
  const auto not_space = [](unsigned char c) { return !std::isspace(c); };
  s.erase(s.begin(), std::find_if(s.begin(), s.end(), not_space));
  s.erase(std::find_if(s.rbegin(), s.rend(), not_space).base(), s.end());
  if (s.size() >= 2 && s.front() == '"' && s.back() == '"') s = s.substr(1, s.size() - 2);
  return s;
}

// LLM-written fields cached on disk, keyed by model and input, so a rerun (or a larger run) does
// not pay for them again. One JSONL file per model; appended as values are produced.
class FieldCache {
 public:
  FieldCache(const std::filesystem::path& dir, const std::string& model) {
    if (dir.empty()) return;
    std::filesystem::create_directories(dir);
    path_ = dir / fmt::format("instruct-fields-{}.jsonl", hash::hex64(hash::fnv1a64(model)));
    std::ifstream in(path_);
    std::string line;
    std::size_t n = 0;
    while (std::getline(in, line)) {
      ++n;
      if (line.empty()) continue;
      try {
        json j = json::parse(line);
        values_[j.at("k").get<std::string>()] = j.at("v").get<std::string>();
      } catch (const std::exception&) {
        // A torn last line from an interrupted run only costs one regeneration.
      }
    }
    out_.open(path_, std::ios::app);
  }
  std::optional<std::string> get(const std::string& key) const {
    auto it = values_.find(key);
    if (it == values_.end()) return std::nullopt;
    return it->second;
  }
  void put(const std::string& key, const std::string& value) {
    values_[key] = value;
    if (out_) {
      out_ << json{{"k", key}, {"v", value}}.dump() << '\n';
      out_.flush();
    }
  }

 private:
  std::filesystem::path path_;
  std::unordered_map<std::string, std::string> values_;
  std::ofstream out_;
};

class Writer {
 public:
  Writer(const data::Dataset& ds, const TemplateSet& templates, const GenerateOptions& options)
      : ds_(ds),
        templates_(templates),
        options_(options),
        cache_(options.llm ? options.cache_dir : std::filesystem::path{},
               options.llm ? options.llm->name() : std::string{}) {}

  std::optional<std::string> llm_field(const std::string& kind, const std::string& key_text,
                                       const std::string& prompt, GenerateSummary& summary) {
    if (!options_.llm) return std::nullopt;
    const std::string key =
        hash::hex64(hash::fnv1a64(options_.llm->name() + "\x1f" + kind + "\x1f" + key_text));
    if (auto v = cache_.get(key)) {
      ++summary.llm_cache_hits;
      return v->empty() ? std::nullopt : v;
    }
    ++summary.llm_calls;
    llm::GenerationOptions gen;
    gen.max_tokens = 80;
    gen.temperature = 0.0f;
    gen.seed = options_.seed;
    gen.stop = {"\n\n"};
    try {
      std::vector<llm::Message> messages = {
          {"system", "You write short, plain descriptions for a recommender system."},
          {"user", prompt}};
      std::string text = trim_reply(options_.llm->chat(messages, gen).text);
      cache_.put(key, text);
      if (text.empty()) return std::nullopt;
      return text;
    } catch (const llm::LlmError&) {
      ++summary.llm_failures;
      return std::nullopt;
    }
  }

  std::optional<std::string> explicit_preference(UserIndex u, const std::string& history,
                                                 GenerateSummary& s) {
    return llm_field(
        "explicit_preference", ds_.user(u).id + "\x1f" + history,
        "Here are the items a user interacted with, oldest first:\n" + history +
            "\nIn one or two sentences, describe this user's taste (genres, themes, style) "
            "without listing the titles.",
        s);
  }

  std::optional<std::string> vague_intention(ItemIndex i, GenerateSummary& s) {
    const data::Item& item = ds_.item(i);
    const std::string cats = categories_text(item);
    std::string about = cats.empty() ? fmt::format("\"{}\"", display_title(item))
                                     : fmt::format("\"{}\" ({})", display_title(item), cats);
    for (const auto& [k, v] : item.text) {
      if (k == "description" || k == "review") about.append("\n").append(v, 0, 400);
    }
    return llm_field(
        "vague_intention", fmt::format("{}\x1f{}", item.id, about),
        fmt::format("A customer ended up choosing {}.\nWrite one short sentence, in the customer's "
                    "own voice, saying what they were looking for, without naming the item.",
                    about),
        s);
  }

  const data::Dataset& ds_;
  const TemplateSet& templates_;
  const GenerateOptions& options_;
  FieldCache cache_;
};

}  // namespace

OutputFormat parse_output_format(const std::string& name) {
  if (name == "openai-chat" || name == "openai") return OutputFormat::kOpenAIChat;
  if (name == "alpaca") return OutputFormat::kAlpaca;
  throw InputError("--format", 0, "format",
                   "unknown output format '" + name + "' (openai-chat or alpaca)");
}

std::vector<UserIndex> evaluation_users(const data::Dataset& ds, const GenerateOptions& options) {
  if (options.eval_users == 0) return {};
  const data::Split split = data::split_leave_last_out(ds);
  return data::sample_users(split.eval_users, options.eval_users, options.eval_seed);
}

GenerateSummary generate_instructions(const data::Dataset& ds, const TemplateSet& templates,
                                      const GenerateOptions& options,
                                      const std::function<void(const Instruction&)>& sink) {
  const auto start = std::chrono::steady_clock::now();
  GenerateSummary summary;
  Writer writer(ds, templates, options);
  const auto seqs = sequences(ds);
  summary.users_total = ds.num_users();

  // Which template cells this data (and backend) can fill at all.
  const bool categories = has_categories(ds);
  std::vector<const Template*> pool;
  for (const auto& t : templates.templates) {
    if (!options.variants && !t.is_coarse()) continue;
    std::string why;
    if (t.uses("explicit_preference") && !options.llm) {
      why = "P2 explicit preference is written by an LLM; no --llm given";
    } else if (t.uses("vague_intention") && !options.llm) {
      why = "I1 vague intention is written by an LLM; no --llm given";
    } else if (t.uses("specific_intention") && !categories) {
      why = "I2 specific intention needs the target's category labels; '" + ds.name() +
            "' items have none";
    }
    if (why.empty()) {
      pool.push_back(&t);
    } else {
      summary.unfillable_cells.emplace(t.cell.str(), why);
    }
  }
  for (const Template* t : pool) summary.unfillable_cells.erase(t->cell.str());
  if (!options.llm) summary.notes.push_back("no --llm: P2 and I1 templates skipped");
  if (!categories) {
    summary.notes.push_back("'" + ds.name() + "' has no category labels: I2 templates unfillable");
  }
  if (pool.empty())
    throw InputError(templates.source, 0, "", "no template can be filled from this data");

  // The evaluation sample and every user's test target (the last item) stay out of training.
  const std::vector<UserIndex> eval_users = evaluation_users(ds, options);
  std::vector<char> is_eval(ds.num_users(), 0);
  for (auto u : eval_users) is_eval[u] = 1;
  std::unordered_set<ItemIndex> eval_targets;
  for (auto u : eval_users) eval_targets.insert(seqs[u].back());
  summary.eval_users_excluded = eval_users.size();

  std::vector<UserIndex> users;
  for (UserIndex u = 0; u < ds.num_users(); ++u) {
    if (!is_eval[u] && seqs[u].size() >= 3) users.push_back(u);
  }
  if (options.max_users > 0 && options.max_users < users.size()) {
    users = data::sample_users(users, options.max_users, options.seed);
  }
  summary.users_used = users.size();

  std::vector<std::string> titles(ds.num_items());
  for (ItemIndex i = 0; i < ds.num_items(); ++i) titles[i] = display_title(ds.item(i));

  std::unordered_set<std::uint64_t> seen;
  Progress progress("instruct generate", users.size(), "users");
  const bool show = options.progress;
  for (UserIndex u : users) {
    const auto& seq = seqs[u];
    Rng rng(mix(options.seed, u));
    std::unordered_set<ItemIndex> excluded(seq.begin(), seq.end());
    const std::size_t targets = seq.size() - 2;  // positions 1..n-2; n-1 is the test target
    for (std::size_t k = 0; k < options.per_user; ++k) {
      const std::size_t pos = seq.size() - 2 - (k % targets);
      const ItemIndex target = seq[pos];
      const Template& t = *pool[rng.below(pool.size())];

      // Negatives: never the user's items, never an evaluation user's test target.
      const std::size_t want = t.cell.t == 3 ? options.negatives : 1;
      std::vector<ItemIndex> negatives;
      for (std::size_t tries = 0; negatives.size() < want && tries < want * 50 + 100; ++tries) {
        const auto i = static_cast<ItemIndex>(rng.below(ds.num_items()));
        if (excluded.count(i) || eval_targets.count(i)) continue;
        if (std::find(negatives.begin(), negatives.end(), i) != negatives.end()) continue;
        negatives.push_back(i);
      }
      if (negatives.size() < want) {
        ++summary.unfillable_skipped;
        continue;
      }

      Instruction ins;
      ins.template_id = t.id;
      ins.cell = t.cell;
      ins.user = u;
      ins.target = target;
      const std::size_t h0 = pos > options.history_length ? pos - options.history_length : 0;
      std::vector<std::string> history;
      for (std::size_t q = h0; q < pos; ++q) {
        history.push_back(titles[seq[q]]);
        ins.items.push_back(seq[q]);
      }
      ins.items.push_back(target);

      // For yes/no templates a coin decides whether the subject is the target (Yes) or a negative
      // (No).
      ItemIndex subject = target;
      if (t.output == "yes_no" && rng.below(2) == 1) subject = negatives[0];
      const ItemIndex intention_item = t.contrast == "intention" ? subject : target;

      Fields f, a;
      bool ok = true;
      if (t.uses("history")) f["history"] = bullet_list(history);
      if (t.uses("explicit_preference")) {
        auto v = writer.explicit_preference(u, bullet_list(history), summary);
        if (v) f["explicit_preference"] = a["explicit_preference"] = *v;
        ok = ok && v.has_value();
      }
      if (ok && t.uses("specific_intention")) {
        std::string v = categories_text(ds.item(intention_item));
        if (t.contrast == "intention" && intention_item != target &&
            v == categories_text(ds.item(target))) {
          v.clear();  // a negative with the target's labels would make the No label wrong
        }
        if (!v.empty()) f["specific_intention"] = a["specific_intention"] = v;
        ok = !v.empty();
      }
      if (ok && t.uses("vague_intention")) {
        auto v = writer.vague_intention(intention_item, summary);
        if (v) f["vague_intention"] = a["vague_intention"] = *v;
        ok = v.has_value();
      }
      if (!ok) {
        ++summary.unfillable_skipped;
        continue;
      }
      if (t.uses("item")) {
        f["item"] = titles[t.contrast == "intention" ? target : subject];
      }
      if (t.cell.t == 1) {
        const bool target_first = rng.below(2) == 0;
        f["item_a"] = titles[target_first ? target : negatives[0]];
        f["item_b"] = titles[target_first ? negatives[0] : target];
        ins.items.push_back(negatives[0]);
      }
      if (t.cell.t == 3) {
        std::vector<ItemIndex> cands = negatives;
        cands.push_back(target);
        rng.shuffle(cands);
        std::vector<std::string> ct;
        for (auto c : cands) ct.push_back(titles[c]);
        f["candidates"] = numbered_list(ct);
        for (auto c : negatives) ins.items.push_back(c);
      }
      if (subject != target) ins.items.push_back(subject);
      a["target"] = titles[target];
      a["label"] = subject == target ? "Yes" : "No";
      {
        std::string recent;
        const std::size_t r0 = history.size() > 3 ? history.size() - 3 : 0;
        for (std::size_t q = r0; q < history.size(); ++q) {
          if (!recent.empty()) recent += "; ";
          recent += history[q];
        }
        a["recent"] = recent;
      }
      ins.text = render(templates, t, f, a);
      const std::uint64_t h =
          hash::fnv1a64(ins.text.system + "\x1f" + ins.text.prompt + "\x1f" + ins.text.answer);
      if (!seen.insert(h).second) {
        ++summary.duplicates_skipped;
        continue;
      }
      ++summary.instructions;
      ++summary.per_template[t.id];
      ++summary.per_cell[t.cell.str()];
      sink(ins);
    }
    if (show) progress.advance();
  }
  if (show) {
    progress.set_postfix(fmt::format("{} instructions", summary.instructions));
    progress.finish();
  }
  summary.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  return summary;
}

std::string to_jsonl(const Instruction& ins, OutputFormat format) {
  json j;
  if (format == OutputFormat::kOpenAIChat) {
    json messages = json::array();
    if (!ins.text.system.empty())
      messages.push_back({{"role", "system"}, {"content", ins.text.system}});
    messages.push_back({{"role", "user"}, {"content", ins.text.prompt}});
    messages.push_back({{"role", "assistant"}, {"content", ins.text.answer}});
    j["messages"] = std::move(messages);
  } else {
    j["instruction"] = ins.text.prompt;
    j["input"] = "";
    j["output"] = ins.text.answer;
  }
  return j.dump(-1, ' ', false, json::error_handler_t::replace);
}

std::string GenerateSummary::to_text() const {
  std::string out;
  out += fmt::format("users: {} total, {} used for training, {} evaluation users excluded\n",
                     users_total, users_used, eval_users_excluded);
  out += fmt::format("instructions: {} written, {} duplicates skipped, {} skipped as unfillable\n",
                     instructions, duplicates_skipped, unfillable_skipped);
  if (llm_calls || llm_cache_hits || llm_failures) {
    out += fmt::format("LLM fields: {} generated, {} from cache, {} failed\n", llm_calls,
                       llm_cache_hits, llm_failures);
  }
  out += "per cell:\n";
  for (const auto& [cell, n] : per_cell) out += fmt::format("  {:<10} {:>9}\n", cell, n);
  out += "per template:\n";
  for (const auto& [id, n] : per_template) out += fmt::format("  {:<10} {:>9}\n", id, n);
  if (!unfillable_cells.empty()) {
    out += "cells this data cannot fill:\n";
    for (const auto& [cell, why] : unfillable_cells) out += fmt::format("  {:<10} {}\n", cell, why);
  }
  for (const auto& n : notes) out += "note: " + n + "\n";
  out += fmt::format("time: {:.1f} s\n", seconds);
  return out;
}

std::string GenerateSummary::to_json() const {
  json j{{"users_total", users_total},
         {"users_used", users_used},
         {"eval_users_excluded", eval_users_excluded},
         {"instructions", instructions},
         {"duplicates_skipped", duplicates_skipped},
         {"unfillable_skipped", unfillable_skipped},
         {"per_template", per_template},
         {"per_cell", per_cell},
         {"unfillable_cells", unfillable_cells},
         {"notes", notes},
         {"llm_calls", llm_calls},
         {"llm_cache_hits", llm_cache_hits},
         {"llm_failures", llm_failures},
         {"seconds", seconds}};
  return j.dump(2);
}

}  // namespace chatrec::instruct
