#include "chat/explain.h"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <regex>

#include "chat/llm_call.h"
#include "chat/title_match.h"
#include "common/text.h"

namespace chatrec::chat {

bool mentions_title(std::string_view text, std::string_view title) {
  const std::string hay = title_key(text);
  const std::string key = title_key(title);
  if (key.empty()) return false;
  if (contains_words(hay, key)) return true;
  // Long titles are usually shortened ("Raiders of the Lost Ark" -> "Raiders"): the first two
  // words.
  const auto first_space = key.find(' ');
  if (first_space == std::string::npos) return false;
  const auto second_space = key.find(' ', first_space + 1);
  const std::string head = key.substr(0, second_space);
  return head.size() >= 6 && contains_words(hay, head);
}

namespace {

struct Phrase {
  const char* third;  // lower case
  const char* second;
};
// Longest first, so "the user is" wins over "the user".
constexpr Phrase kPhrases[] = {{"the user's", "your"},
                               {"the user is", "you are"},
                               {"the user was", "you were"},
                               {"the user has", "you have"},
                               {"the user likes", "you like"},
                               {"the user enjoys", "you enjoy"},
                               {"the user seems", "you seem"},
                               {"the user loves", "you love"},
                               {"the user", "you"},
                               {"this user", "you"}};
constexpr std::size_t kLongestPhrase = 15;

bool letter(char c) {
  return std::isalpha(static_cast<unsigned char>(c)) != 0;
}

}  // namespace

std::string SecondPersonRewriter::rewrite_complete(bool at_end) {
  std::string out;
  const std::string lower = text::to_lower(pending_);
  std::size_t i = 0;
  while (i < pending_.size()) {
    // Near the end, a phrase (or the letter that would make it part of a longer word) may still
    // be arriving: wait for it.
    if (!at_end && pending_.size() - i <= kLongestPhrase) break;
    bool replaced = false;
    if (i == 0 || !letter(pending_[i - 1])) {
      for (const auto& p : kPhrases) {
        const std::string_view third(p.third);
        if (lower.compare(i, third.size(), third) != 0) continue;
        const std::size_t end = i + third.size();
        if (end < pending_.size() && letter(pending_[end])) continue;
        std::string second(p.second);
        if (std::isupper(static_cast<unsigned char>(pending_[i])))
          second[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(second[0])));
        out += second;
        i = end;
        replaced = true;
        break;
      }
    }
    if (!replaced) out += pending_[i++];
  }
  pending_.erase(0, i);
  return out;
}

std::string SecondPersonRewriter::feed(std::string_view piece) {
  pending_ += piece;
  return rewrite_complete(false);
}

std::string SecondPersonRewriter::flush() {
  return rewrite_complete(true);
}

std::string to_second_person(std::string_view text) {
  SecondPersonRewriter r;
  std::string out = r.feed(text);
  return out + r.flush();
}

std::string template_explanation(const PromptItem& item, const std::vector<PromptItem>& support,
                                 const std::string& domain) {
  std::string s = item.title;
  if (!item.categories.empty()) {
    s += " is a " + text::join(item.categories, " / ") + " " + domain_noun(domain, false);
  } else {
    s += " is a " + domain_noun(domain, false);
  }
  if (!support.empty()) {
    std::vector<std::string> named;
    for (const auto& x : support) {
      named.push_back(x.title + (x.rating > 0
                                     ? " (you rated it " +
                                           std::to_string(static_cast<int>(x.rating + 0.5f)) + ")"
                                     : ""));
    }
    s += " liked by people who also enjoyed " + text::join(named, ", ");
  }
  return s + ".";
}

bool echoes_prompt(std::string_view answer) {
  // The shapes of the prompt's lines (describe_item with a rating, the profile's headings).
  static const std::regex prompt_line(R"(\] rated [1-5]\b|\bYour request:|\bYou disliked:)");
  return std::regex_search(answer.begin(), answer.end(), prompt_line);
}

Explanation explain_item(llm::LanguageModel* lm, const PromptContext& ctx, const PromptItem& item,
                         const std::vector<PromptItem>& support, int max_tokens,
                         double timeout_seconds, const TextCallback& on_text, Stats* stats) {
  Explanation e;
  for (const auto& s : support) e.support_titles.push_back(s.title);
  std::string answer;
  if (lm) {
    const auto prompt = explain_prompt(*lm, ctx, item, support, max_tokens + 8);
    llm::GenerationOptions options;
    options.max_tokens = max_tokens;
    options.stop = {"\n\n"};
    // Not streamed as it comes: a small model sometimes answers with the prompt's own lines, which
    // must not reach the user, and that is only known once the answer is complete (a few dozen
    // tokens).
    LlmCallResult r = call_chat(*lm, prompt.messages, options, timeout_seconds, stats);
    const std::string said = r.completion ? std::string(text::trim(r.completion->text)) : "";
    if (!said.empty() && !echoes_prompt(said)) {
      answer = to_second_person(said);
      e.llm_used = true;
      if (on_text) on_text(answer);
    } else {
      if (stats) stats->fail(r.completion ? "unparseable" : r.failure, "template_explanation");
      e.degraded = true;
      e.notes.push_back(!r.completion  ? r.message
                        : said.empty() ? "the LLM gave an empty explanation"
                                       : "the LLM repeated its prompt instead of explaining");
    }
  }
  if (!e.llm_used) {
    std::string t = template_explanation(item, support, ctx.domain);
    if (on_text) on_text(t);
    e.text = t;
    return e;
  }
  std::vector<std::string> missing;
  for (const auto& s : support) {
    if (!mentions_title(answer, s.title)) missing.push_back(s.title);
  }
  if (!support.empty() && missing.size() == support.size()) {
    // The answer does not say what it relies on: name the history items it was given.
    std::string add = " (Based on your history: " + text::join(missing, ", ") + ".)";
    if (on_text) on_text(add);
    answer += add;
    if (stats) stats->resolutions["explanation_support_appended"] += 1;
  }
  e.text = answer;
  return e;
}

float predict_rating_llm(llm::LanguageModel* lm, const PromptContext& ctx, const PromptItem& item,
                         float fallback, double timeout_seconds, Stats* stats, bool* llm_used) {
  if (llm_used) *llm_used = false;
  if (!lm) return fallback;
  const auto prompt = rating_prompt(*lm, ctx, item, 8);
  const std::vector<std::string> digits = {"1", "2", "3", "4", "5"};
  LikelihoodResult r = call_loglikelihood(*lm, prompt.messages, digits, timeout_seconds, stats);
  if (r.scores) {
    double mx = -1e300;
    for (const auto& s : *r.scores) mx = std::max(mx, s.logprob);
    double z = 0.0, ev = 0.0;
    for (std::size_t i = 0; i < digits.size(); ++i) {
      const double p = std::exp((*r.scores)[i].logprob - mx);
      z += p;
      ev += p * static_cast<double>(i + 1);
    }
    if (z > 0 && std::isfinite(ev / z)) {
      if (llm_used) *llm_used = true;
      return static_cast<float>(ev / z);
    }
    if (stats) stats->fail("unparseable", "base_rating");
    return fallback;
  }
  // Backends that cannot score: a constrained choice of one digit.
  llm::GenerationOptions options;
  options.max_tokens = 2;
  options.choices = digits;
  LlmCallResult c = call_chat(*lm, prompt.messages, options, timeout_seconds, stats);
  if (c.completion) {
    const std::string t(text::trim(c.completion->text));
    if (t.size() == 1 && t[0] >= '1' && t[0] <= '5') {
      if (llm_used) *llm_used = true;
      return static_cast<float>(t[0] - '0');
    }
    if (stats) stats->fail("unparseable", "base_rating");
  } else if (stats) {
    stats->fail(c.failure, "base_rating");
  }
  return fallback;
}

}  // namespace chatrec::chat
