#include "instruct/candidate_ranker.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <stdexcept>

#include "common/error.h"
#include "data/splits.h"

namespace chatrec::instruct {

std::string display_title(const data::Item& item, std::size_t max_chars) {
  std::string out;
  out.reserve(std::min(item.title.size(), max_chars + 3));
  bool space = false;
  for (char c : item.title) {
    const bool ws = c == ' ' || c == '\t' || c == '\n' || c == '\r';
    if (ws) {
      space = !out.empty();
      continue;
    }
    if (space) out += ' ';
    space = false;
    out += c;
  }
  if (out.size() > max_chars) {
    std::size_t cut = max_chars;
    // Never split a UTF-8 sequence.
    while (cut > 0 && (static_cast<unsigned char>(out[cut]) & 0xC0) == 0x80) --cut;
    out.resize(cut);
    out += "...";
  }
  if (out.empty()) out = "(untitled item)";
  return out;
}

std::string numbered_list(const std::vector<std::string>& titles) {
  std::string out;
  for (std::size_t k = 0; k < titles.size(); ++k) {
    if (k) out += '\n';
    out += fmt::format("{}. {}", k + 1, titles[k]);
  }
  return out;
}

std::string bullet_list(const std::vector<std::string>& titles) {
  std::string out;
  for (std::size_t k = 0; k < titles.size(); ++k) {
    if (k) out += '\n';
    out += "- ";
    out += titles[k];
  }
  return out;
}

std::string option_label(std::size_t k) {
  if (k >= 26) throw std::invalid_argument("at most 26 lettered options");
  return std::string(1, static_cast<char>('A' + k));
}

std::string lettered_list(const std::vector<std::string>& titles) {
  std::string out;
  for (std::size_t k = 0; k < titles.size(); ++k) {
    if (k) out += '\n';
    out += fmt::format("{}. {}", option_label(k), titles[k]);
  }
  return out;
}

std::vector<llm::Message> ranking_prompt(const TemplateSet& set, const Template& t,
                                         const std::vector<std::string>& history,
                                         const std::vector<std::string>& candidates, bool letters) {
  Fields fields{{"history", bullet_list(history)},
                {"candidates", letters ? lettered_list(candidates) : numbered_list(candidates)}};
  std::vector<llm::Message> messages;
  if (!set.system.empty()) messages.push_back({"system", set.system});
  std::string text = fill(t.prompt, fields, t.id);
  if (letters) text += std::string("\n") + kLetterInstruction;
  messages.push_back({"user", std::move(text)});
  return messages;
}

std::vector<llm::Message> pointwise_prompt(const TemplateSet& set, const Template& t,
                                           const std::vector<std::string>& history,
                                           const std::string& item) {
  std::vector<llm::Message> messages;
  if (!set.system.empty()) messages.push_back({"system", set.system});
  messages.push_back(
      {"user", fill(t.prompt, {{"history", bullet_list(history)}, {"item", item}}, t.id)});
  return messages;
}

std::vector<llm::Message> sequence_prompt(const TemplateSet& set,
                                          const std::vector<std::string>& history) {
  std::vector<llm::Message> messages;
  if (!set.system.empty()) messages.push_back({"system", set.system});
  messages.push_back({"user", kSequenceInstruction});
  std::string lines;
  for (const auto& title : history) lines += title + "\n";
  messages.push_back({"assistant", std::move(lines)});
  return messages;
}

bool has_categories(const data::Dataset& ds) {
  return std::any_of(ds.items().begin(), ds.items().end(), [](const data::Item& i) {
    return std::any_of(i.categories.begin(), i.categories.end(),
                       [](const std::string& c) { return c != "unknown"; });
  });
}

std::vector<double> training_popularity(const data::Dataset& ds) {
  const data::Split split = data::split_leave_last_out(ds);
  std::vector<double> pop(ds.num_items(), 0.0);
  for (const auto& x : split.train) pop[x.item] += 1.0;
  return pop;
}

InstructCandidateRanker::InstructCandidateRanker(const data::Dataset& ds,
                                                 std::shared_ptr<llm::LanguageModel> model,
                                                 CandidateRankerConfig config)
    : ds_(ds),
      model_(std::move(model)),
      config_(std::move(config)),
      templates_(config_.templates ? config_.templates : &builtin_templates()),
      template_(nullptr),
      // A sequence line's log-likelihood is the item's: log p(next item | history), summed over
      // its tokens, not averaged (the seq loss trains exactly that).
      ranker_(*model_, RankerOptions{.length_normalise = config_.scoring != "sequence",
                                     .fallback_name = "popularity"}) {
  if (config_.template_id.empty()) config_.template_id = config_.search ? "B07" : "P07";
  template_ = &templates_->at(config_.template_id);
  // T3 lists the candidates in the prompt; a T2 (matching) prompt has the history only, and each
  // candidate's title is scored as the answer (label scoring needs the lettered list of T3).
  const bool matching = template_->cell.t == 2 && config_.scoring == "title";
  const bool pointwise = template_->cell.t == 0 && config_.scoring == "yesno";
  const bool sequence = config_.scoring == "sequence";  // its prompt is fixed, not a template
  if (config_.scoring == "yesno" && !pointwise)
    throw InputError(templates_->source, 0, "scoring",
                     fmt::format("yesno scoring needs a T0 template, {} is {}", template_->id,
                                 template_->cell.str()));
  if (template_->cell.t != 3 && !matching && !pointwise && !sequence) {
    throw InputError(templates_->source, 0, "id",
                     fmt::format("template {} is {}, but ranking candidates needs a T3 template "
                                 "(or T2 with title scoring)",
                                 template_->id, template_->cell.str()));
  }
  if (template_->uses("explicit_preference") || template_->uses("vague_intention")) {
    throw InputError(
        templates_->source, 0, "id",
        fmt::format("template {} needs LLM-written fields (P2/I1), which evaluation does not "
                    "generate; use a P1 template",
                    template_->id));
  }
  if (template_->uses("specific_intention") || config_.search) {
    if (!has_categories(ds_)) {
      throw InputError(
          ds_.name(), 0, "categories",
          "personalised search ⟨P1,I2,T3⟩ needs the target's category labels, and this dataset's "
          "items have none (Amazon Games as shipped has titles only); run the sequential scenario "
          "instead");
    }
    const data::Split split = data::split_leave_last_out(ds_);
    for (const auto& x : split.test) test_target_[x.user] = x.item;
  }
  if (config_.scoring != "title" && config_.scoring != "label" && config_.scoring != "yesno" &&
      !sequence)
    throw InputError(
        templates_->source, 0, "scoring",
        "unknown candidate scoring '" + config_.scoring + "' (title, label, yesno or sequence)");
  if (sequence && (config_.search || template_->uses("specific_intention")))
    throw InputError(templates_->source, 0, "scoring",
                     "sequence scoring is for the sequential scenario only");
  if (config_.scoring == "label" && template_->uses("specific_intention"))
    throw InputError(templates_->source, 0, "scoring",
                     "label scoring is trained for the sequential scenario only");
  if (config_.calibration.empty()) config_.calibration = sequence ? "pmi" : "none";
  if (config_.calibration != "none" && config_.calibration != "pmi")
    throw InputError(templates_->source, 0, "calibration",
                     "unknown calibration '" + config_.calibration + "' (none or pmi)");
  if (config_.calibration == "pmi" && config_.scoring == "yesno")
    throw InputError(templates_->source, 0, "calibration",
                     "pmi calibration needs likelihood scoring (title, label or sequence), not "
                     "yesno");
  if (!(config_.pmi_weight >= 0.0 && config_.pmi_weight <= 1.0))
    throw InputError(templates_->source, 0, "pmi_weight", "the PMI weight must be in [0, 1]");
  if (!(config_.prior_weight >= 0.0))
    throw InputError(templates_->source, 0, "prior_weight", "the prior weight must be >= 0");
  popularity_ =
      config_.popularity.empty() ? training_popularity(ds_) : std::move(config_.popularity);
}

std::vector<std::string> InstructCandidateRanker::history_titles(
    std::span<const data::ItemIndex> history) const {
  std::vector<std::string> past;
  const std::size_t start =
      history.size() > config_.history_length ? history.size() - config_.history_length : 0;
  for (std::size_t k = start; k < history.size(); ++k)
    past.push_back(display_title(ds_.item(history[k])));
  return past;
}

std::vector<llm::Message> InstructCandidateRanker::prompt(
    data::UserIndex user, std::span<const data::ItemIndex> history,
    std::span<const data::ItemIndex> candidates) const {
  const std::vector<std::string> past = history_titles(history);
  if (config_.scoring == "sequence") return sequence_prompt(*templates_, past);
  std::vector<std::string> titles;
  for (auto c : candidates) titles.push_back(display_title(ds_.item(c)));
  if (config_.scoring == "label")
    return ranking_prompt(*templates_, *template_, past, titles, true);
  Fields fields{{"history", bullet_list(past)}, {"candidates", numbered_list(titles)}};
  if (template_->uses("specific_intention")) {
    auto it = test_target_.find(user);
    std::string query;
    if (it != test_target_.end()) {
      for (const auto& c : ds_.item(it->second).categories) {
        if (c == "unknown") continue;
        if (!query.empty()) query += ", ";
        query += c;
      }
    }
    fields["specific_intention"] = query.empty() ? "something new" : query;
  }
  std::vector<llm::Message> messages;
  if (!templates_->system.empty()) messages.push_back({"system", templates_->system});
  messages.push_back({"user", fill(template_->prompt, fields, template_->id)});
  return messages;
}

std::vector<double> LikelihoodTerms::combined(double pmi_weight) const {
  std::vector<double> out = conditional;
  for (std::size_t k = 0; k < unconditional.size() && k < out.size(); ++k)
    out[k] -= pmi_weight * unconditional[k];
  return out;
}

PmiWeightChoice choose_pmi_weight(const std::vector<LikelihoodTerms>& cases,
                                  const std::vector<std::size_t>& targets) {
  if (cases.size() != targets.size())
    throw std::invalid_argument("choose_pmi_weight: one target per case");
  auto measure = [&](double w) {
    double hr1 = 0.0, ndcg5 = 0.0;
    for (std::size_t k = 0; k < cases.size(); ++k) {
      const std::vector<double> s = cases[k].combined(w);
      // The target's rank: candidates scoring strictly higher, ties counted against it.
      std::size_t above = 0;
      for (std::size_t j = 0; j < s.size(); ++j)
        if (j != targets[k] && s[j] >= s[targets[k]]) ++above;
      hr1 += above == 0;
      if (above < 5) ndcg5 += 1.0 / std::log2(static_cast<double>(above) + 2.0);
    }
    const double n = static_cast<double>(std::max<std::size_t>(1, cases.size()));
    return std::pair{hr1 / n, ndcg5 / n};
  };
  PmiWeightChoice best;
  best.weight = -1.0;
  // From the full PMI down, so ties keep the weight nearer 1.
  for (int step = 20; step >= 0; --step) {
    const double w = step / 20.0;
    const auto [hr1, ndcg5] = measure(w);
    if (step == 20) best.hr1_full_pmi = hr1;
    if (best.weight < 0.0 || hr1 > best.hr1 + 1e-12 ||
        (hr1 > best.hr1 - 1e-12 && ndcg5 > best.ndcg5 + 1e-12)) {
      best.weight = w;
      best.hr1 = hr1;
      best.ndcg5 = ndcg5;
    }
  }
  return best;
}

std::optional<LikelihoodTerms> InstructCandidateRanker::likelihood_terms(
    data::UserIndex user, std::span<const data::ItemIndex> history,
    std::span<const data::ItemIndex> candidates) {
  std::vector<std::string> titles;
  for (auto c : candidates) titles.push_back(display_title(ds_.item(c)));
  const std::vector<double> fallback = popularity_of(candidates);
  if (config_.scoring == "label") {
    for (std::size_t k = 0; k < titles.size(); ++k) titles[k] = option_label(k);
  }
  if (config_.scoring == "sequence") {
    for (auto& t : titles) t += '\n';  // the line must end where the title does
  }
  RankResult r;
  if (config_.scoring == "yesno") {
    const std::vector<std::string> past = history_titles(history);
    r = ranker_.rank_pointwise(
        titles.size(),
        [&](std::size_t k) { return pointwise_prompt(*templates_, *template_, past, titles[k]); },
        fallback);
  } else {
    r = ranker_.rank_by_likelihood(prompt(user, history, candidates), titles, fallback);
  }
  if (r.fell_back) return std::nullopt;
  LikelihoodTerms terms;
  terms.conditional = std::move(r.scores);
  if (config_.calibration != "pmi") return terms;
  // The same prompt without the history. The sequence prompt is then the same for every case, so
  // each title's value is computed once.
  const bool fixed_prompt = config_.scoring == "sequence";
  std::vector<std::string> missing;
  for (const auto& t : titles)
    if (!fixed_prompt || !null_sequence_.contains(t)) missing.push_back(t);
  std::vector<double> null_scores;
  if (!missing.empty()) {
    const RankResult n = ranker_.rank_by_likelihood(
        prompt(user, std::span<const data::ItemIndex>{}, candidates), missing, {});
    if (n.fell_back) return std::nullopt;
    null_scores = n.scores;
  }
  if (fixed_prompt) {
    for (std::size_t k = 0; k < missing.size(); ++k) null_sequence_[missing[k]] = null_scores[k];
    for (const auto& t : titles) terms.unconditional.push_back(null_sequence_.at(t));
  } else {
    terms.unconditional = std::move(null_scores);
  }
  return terms;
}

std::optional<std::vector<double>> InstructCandidateRanker::log_scores(
    data::UserIndex user, std::span<const data::ItemIndex> history,
    std::span<const data::ItemIndex> candidates) {
  auto terms = likelihood_terms(user, history, candidates);
  if (!terms) return std::nullopt;
  return terms->combined(config_.pmi_weight);
}

std::vector<float> InstructCandidateRanker::rank_scores(
    const std::optional<std::vector<double>>& log_scores,
    std::span<const data::ItemIndex> candidates, double prior_weight,
    std::span<const double> prior) const {
  const std::vector<double> fallback = popularity_of(candidates);
  std::vector<std::size_t> order;
  if (!log_scores) {
    order = order_by(fallback);
  } else {
    std::vector<double> s = *log_scores;
    if (prior_weight > 0.0) {
      for (std::size_t k = 0; k < s.size(); ++k)
        s[k] +=
            prior_weight * std::log1p(candidates[k] < prior.size() ? prior[candidates[k]] : 0.0);
    }
    order = order_by(s, fallback);
  }
  std::vector<float> scores(candidates.size(), 0.0f);
  for (std::size_t pos = 0; pos < order.size(); ++pos)
    scores[order[pos]] = static_cast<float>(order.size() - pos);
  return scores;
}

eval::StageStats InstructCandidateRanker::stats() const {
  eval::StageStats s = ranker_.stats();
  if (config_.calibration == "pmi")
    s.resolutions["pmi_weight_x100"] = std::lround(config_.pmi_weight * 100);
  return s;
}

std::vector<double> InstructCandidateRanker::popularity_of(
    std::span<const data::ItemIndex> candidates) const {
  std::vector<double> out;
  for (auto c : candidates) out.push_back(c < popularity_.size() ? popularity_[c] : 0.0);
  return out;
}

std::vector<float> InstructCandidateRanker::score(data::UserIndex user,
                                                  std::span<const data::ItemIndex> history,
                                                  std::span<const data::ItemIndex> candidates) {
  return rank_scores(log_scores(user, history, candidates), candidates, config_.prior_weight,
                     popularity_);
}

}  // namespace chatrec::instruct
