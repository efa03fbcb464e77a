#include "chat/constraints.h"

#include <algorithm>
#include <cctype>
#include <map>
#include <regex>
#include <set>

#include "chat/llm_call.h"
#include "chat/prompts.h"
#include "common/text.h"

namespace chatrec::chat {

namespace {

// Words people use for a category, besides its own name and plural.
const std::map<std::string, std::vector<std::string>>& synonyms() {
  static const std::map<std::string, std::vector<std::string>> s = {
      {"comedy", {"comedy", "comedies", "funny", "humor", "humour", "hilarious"}},
      {"sci-fi", {"sci-fi", "sci fi", "scifi", "science fiction", "science-fiction", "space"}},
      {"children's", {"children", "children's", "kids", "kid", "family", "childrens"}},
      {"animation", {"animation", "animated", "cartoon", "cartoons", "anime"}},
      {"romance", {"romance", "romantic", "romances", "love story", "love stories", "romcom"}},
      {"horror", {"horror", "scary", "horrors", "frightening"}},
      {"thriller", {"thriller", "thrillers", "suspense", "suspenseful"}},
      {"documentary", {"documentary", "documentaries", "docs"}},
      {"film-noir", {"film-noir", "film noir", "noir"}},
      {"western", {"western", "westerns", "cowboy", "cowboys"}},
      {"musical", {"musical", "musicals"}},
      {"mystery", {"mystery", "mysteries", "whodunit"}},
      {"drama", {"drama", "dramas", "dramatic"}},
      {"war", {"war", "wartime"}},
      {"crime", {"crime", "gangster", "gangsters", "heist"}},
      {"fantasy", {"fantasy", "fantasies"}},
      {"adventure", {"adventure", "adventures"}},
      {"action", {"action", "action-packed"}},
  };
  return s;
}

std::vector<std::string> words_for(const std::string& category) {
  const std::string lower = text::to_lower(category);
  auto it = synonyms().find(lower);
  if (it != synonyms().end()) return it->second;  // curated: "wars" must not mean "war" (Star Wars)
  return {lower, lower + "s"};
}

// Positions where a whole-word phrase occurs.
std::vector<std::size_t> find_phrase(const std::string& hay, const std::string& phrase) {
  std::vector<std::size_t> out;
  std::size_t pos = 0;
  auto word_char = [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '\''; };
  while ((pos = hay.find(phrase, pos)) != std::string::npos) {
    const std::size_t end = pos + phrase.size();
    if ((pos == 0 || !word_char(hay[pos - 1])) && (end >= hay.size() || !word_char(hay[end])))
      out.push_back(pos);
    ++pos;
  }
  return out;
}

// Is the phrase at `pos` negated ("no horror", "not too violent", "without war", "less violent")?
bool negated_at(const std::string& t, std::size_t pos) {
  const std::size_t from = pos > 40 ? pos - 40 : 0;
  std::string before = t.substr(from, pos - from);
  // Only the current clause counts.
  const auto cut = before.find_last_of(".;!?,");
  if (cut != std::string::npos) before = before.substr(cut + 1);
  static const std::regex neg(
      R"(\b(no|not|without|except|avoid|nothing|none|less|fewer|hate|dislike|don'?t want|do not want|don'?t like|no more|skip|but not)\b[^a-z]*(\w+\W+){0,2}$)");
  return std::regex_search(before, neg);
}

int decade_start(int two_digits) {
  return two_digits >= 20 ? 1900 + two_digits : 2000 + two_digits;
}

bool mentions_number(std::string_view text) {
  return std::any_of(text.begin(), text.end(), [](char c) { return c >= '0' && c <= '9'; });
}

void add_unique(std::vector<std::string>& v, const std::string& s) {
  if (std::find(v.begin(), v.end(), s) == v.end()) v.push_back(s);
}

std::string canonical_category(const std::string& name,
                               const std::vector<std::string>& categories) {
  const std::string lower = text::to_lower(text::trim(name));
  for (const auto& c : categories) {
    if (text::to_lower(c) == lower) return c;
    for (const auto& w : words_for(c)) {
      if (w == lower) return c;
    }
  }
  return "";
}

// Title snippets after cue phrases: "like X", "similar to X" / "not X", "except X", "didn't like
// X".
void title_snippets(const std::string& t, ConstraintUpdate& u) {
  static const std::regex like_cue(
      R"((?:^|[^a-z'])(?:more like|similar to|such as|in the vein of|along the lines of|something like|films? like|movies? like|games? like|loved|enjoyed|i liked)\s+(.+?)(?=[.;!?]|,| but | and |$))");
  static const std::regex not_cue(
      R"((?:^|[^a-z'])(?:didn'?t like|did not like|don'?t like|do not like|hated|disliked|not|except|no more|nothing like)\s+(.+?)(?=[.;!?]|,| but | and |$))");
  for (std::sregex_iterator it(t.begin(), t.end(), like_cue), end; it != end; ++it) {
    // "more like Y" after a negation ("not like Y") is a "not".
    if (!negated_at(t, static_cast<std::size_t>(it->position(0)) + 1))
      add_unique(u.like_titles, (*it)[1].str());
  }
  for (std::sregex_iterator it(t.begin(), t.end(), not_cue), end; it != end; ++it) {
    add_unique(u.not_titles, (*it)[1].str());
  }
}

}  // namespace

std::optional<std::string> detect_domain(std::string_view text,
                                         const std::vector<std::string>& domains) {
  const std::string t = text::to_lower(text);
  static const std::regex games(
      R"(\b(video ?games?|games?|gaming|play(ing)?|console|xbox|playstation|ps[2-5]|nintendo|switch|pc games?)\b)");
  static const std::regex movies(R"(\b(movies?|films?|cinema|watch(ing)?|flicks?)\b)");
  std::smatch mg, mm;
  const bool g = std::regex_search(t, mg, games) &&
                 std::find(domains.begin(), domains.end(), "games") != domains.end();
  const bool m = std::regex_search(t, mm, movies) &&
                 std::find(domains.begin(), domains.end(), "movies") != domains.end();
  if (g && m) return mg.position(0) < mm.position(0) ? "games" : "movies";
  if (g) return "games";
  if (m) return "movies";
  return std::nullopt;
}

ConstraintUpdate extract_constraints_rules(std::string_view text, const std::string& current_domain,
                                           const ConstraintVocabulary& vocab) {
  ConstraintUpdate u;
  u.decided_by = "rules";
  const std::string t = text::to_lower(text);
  u.domain = detect_domain(t, vocab.domains);
  const std::string domain = u.domain.value_or(current_domain);
  const auto categories = vocab.categories ? vocab.categories(domain) : std::vector<std::string>{};
  for (const auto& c : categories) {
    if (text::to_lower(c) == "unknown") continue;
    for (const auto& w : words_for(c)) {
      bool found = false;
      for (std::size_t pos : find_phrase(t, w)) {
        add_unique(negated_at(t, pos) ? u.genres_unwanted : u.genres_wanted, c);
        found = true;
      }
      if (found) break;
    }
  }
  // "less violent", "nothing violent", "not so scary" map to the violent categories.
  for (const char* w : {"violent", "violence", "gory", "gore", "bloody"}) {
    for (std::size_t pos : find_phrase(t, w)) {
      if (!negated_at(t, pos)) continue;
      for (const char* c : {"Horror", "War", "Crime"}) {
        const std::string canon = canonical_category(c, categories);
        if (!canon.empty()) add_unique(u.genres_unwanted, canon);
      }
    }
  }
  for (const auto& c : u.genres_unwanted) {
    u.genres_wanted.erase(std::remove(u.genres_wanted.begin(), u.genres_wanted.end(), c),
                          u.genres_wanted.end());
  }

  std::smatch m;
  static const std::regex between(R"(\bbetween\s+((?:19|20)\d\d)\s+and\s+((?:19|20)\d\d)\b)");
  static const std::regex decade(R"((?:^|[^0-9])'?((?:19|20)?)(\d)0'?s\b)");
  static const std::regex after(
      R"(\b(after|since|from|newer than|post|later than)\s+((?:19|20)\d\d)\b)");
  static const std::regex before(
      R"(\b(before|until|till|up to|older than|pre|earlier than)\s+((?:19|20)\d\d)\b)");
  if (std::regex_search(t, m, between)) {
    u.year_min = std::stoi(m[1]);
    u.year_max = std::stoi(m[2]);
  } else if (std::regex_search(t, m, decade)) {
    const int d = std::stoi(m[2]);
    const int start =
        m[1].length() > 0 ? std::stoi(m[1].str() + m[2].str() + "0") : decade_start(d * 10);
    u.year_min = start;
    u.year_max = start + 9;
  } else {
    if (std::regex_search(t, m, after)) {
      const int y = std::stoi(m[2]);
      u.year_min = m[1] == "after" || m[1] == "newer than" || m[1] == "later than" ? y + 1 : y;
    }
    if (std::regex_search(t, m, before)) {
      const int y = std::stoi(m[2]);
      u.year_max = m[1] == "until" || m[1] == "till" || m[1] == "up to" ? y : y - 1;
    }
    if (!u.year_min && !u.year_max) {
      static const std::regex older(R"(\b(older|old|classic|classics|vintage|retro)\b)");
      static const std::regex newer(R"(\b(recent|newer|newest|latest|new releases?|modern)\b)");
      if (std::regex_search(t, older)) {
        u.year_max = domain == "games" ? 2005 : 1979;
      } else if (std::regex_search(t, newer)) {
        const int latest = vocab.latest_year ? vocab.latest_year(domain) : 0;
        if (latest > 0) u.year_min = latest - 3;
      }
    }
  }
  static const std::regex any_year(
      R"(\b(any (year|era|decade|time)|regardless of (year|age)|all eras)\b)");
  if (std::regex_search(t, any_year)) u.clear_years = true;
  title_snippets(t, u);
  return u;
}

std::optional<ConstraintUpdate> parse_constraints_json(std::string_view llm_text,
                                                       std::string_view user_text,
                                                       const std::string& current_domain,
                                                       const ConstraintVocabulary& vocab,
                                                       Stats* stats) {
  const std::string s(llm_text);
  const auto open = s.find('{');
  const auto close = s.rfind('}');
  if (open == std::string::npos || close == std::string::npos || close < open) return std::nullopt;
  nlohmann::json j = nlohmann::json::parse(s.substr(open, close - open + 1), nullptr, false);
  if (j.is_discarded() || !j.is_object()) return std::nullopt;
  static const std::vector<std::string> known = {
      "domain", "genres", "exclude_genres", "year_min", "year_max", "like", "not"};
  bool any_known = false;
  for (const auto& k : known) any_known = any_known || j.contains(k);
  if (!any_known) return std::nullopt;

  Stats local;
  Stats& st = stats ? *stats : local;
  const std::string t = text::to_lower(user_text);
  ConstraintUpdate u;
  u.decided_by = "llm";
  if (j.contains("domain") && !j["domain"].is_null()) {
    const auto& d = j["domain"];
    if (d.is_string() && std::find(vocab.domains.begin(), vocab.domains.end(),
                                   d.get<std::string>()) != vocab.domains.end()) {
      // The model echoes the current domain; only an explicit mention switches.
      if (d.get<std::string>() != current_domain &&
          detect_domain(t, vocab.domains) == d.get<std::string>()) {
        u.domain = d.get<std::string>();
      }
    } else {
      st.fail("invalid_constraint", "dropped");
    }
  }
  const std::string domain = u.domain.value_or(current_domain);
  const auto categories = vocab.categories ? vocab.categories(domain) : std::vector<std::string>{};
  const auto genre_list = [&](const char* key, std::vector<std::string>& out) {
    if (!j.contains(key) || j[key].is_null()) return;
    if (!j[key].is_array()) {
      st.fail("invalid_constraint", "dropped");
      return;
    }
    for (const auto& g : j[key]) {
      const std::string canon =
          g.is_string() ? canonical_category(g.get<std::string>(), categories) : "";
      bool grounded = false;
      if (!canon.empty()) {
        for (const auto& w : words_for(canon)) grounded = grounded || !find_phrase(t, w).empty();
      }
      if (canon.empty() || !grounded) {
        st.fail("invalid_constraint", "dropped");
        continue;
      }
      add_unique(out, canon);
    }
  };
  genre_list("genres", u.genres_wanted);
  genre_list("exclude_genres", u.genres_unwanted);
  const auto year = [&](const char* key) -> std::optional<int> {
    if (!j.contains(key) || j[key].is_null()) return std::nullopt;
    const auto& y = j[key];
    if (!y.is_number_integer() || y.get<int>() < 1900 || y.get<int>() > 2035 ||
        (!mentions_number(user_text) && t.find("old") == std::string::npos &&
         t.find("recent") == std::string::npos && t.find("new") == std::string::npos)) {
      st.fail("invalid_constraint", "dropped");
      return std::nullopt;
    }
    return y.get<int>();
  };
  u.year_min = year("year_min");
  u.year_max = year("year_max");
  if (u.year_min && u.year_max && *u.year_min > *u.year_max) {
    st.fail("invalid_constraint", "dropped");
    u.year_min.reset();
    u.year_max.reset();
  }
  const auto titles = [&](const char* key, std::vector<std::string>& out) {
    if (!j.contains(key) || j[key].is_null()) return;
    if (!j[key].is_array()) {
      st.fail("invalid_constraint", "dropped");
      return;
    }
    for (const auto& x : j[key]) {
      // A title the user never typed is the model's invention.
      if (x.is_string() && !x.get<std::string>().empty() &&
          t.find(text::to_lower(x.get<std::string>())) != std::string::npos) {
        add_unique(out, x.get<std::string>());
      } else {
        st.fail("invalid_constraint", "dropped");
      }
    }
  };
  titles("like", u.like_titles);
  titles("not", u.not_titles);
  return u;
}

namespace {

// The wanted genre by constrained choice among the domain's categories or "none" (then ""); nullopt
// when the call failed (counted).
std::optional<std::string> genre_by_choice(llm::LanguageModel& lm, std::string_view text,
                                           const std::string& domain,
                                           const std::vector<std::string>& categories,
                                           double timeout_seconds, Stats* stats,
                                           std::vector<std::string>* notes) {
  llm::GenerationOptions options;
  options.choices.push_back("none");
  for (const auto& c : categories) options.choices.push_back(c);
  LlmCallResult r =
      call_chat(lm, genre_choice_prompt(text, domain, categories), options, timeout_seconds, stats);
  if (!r.completion) {
    if (stats) stats->fail(r.failure, "rules_constraints");
    if (notes) notes->push_back("constraints: " + r.message + "; the catalogue matcher decided");
    return std::nullopt;
  }
  const std::string answer(text::trim(r.completion->text));
  for (const auto& c : categories) {
    if (text::iequals(answer, c)) return c;
  }
  return std::string();
}

// Does the message describe what kind of item it wants, in words the matcher did not already read?
// A plain request ("Hi! Can you recommend some movies for me?") has only request words, domain
// nouns, era phrases and "like X" titles; asked to pick a genre for it, a small model invents one
// ("Fantasy"). Only a describing word ("something to make me laugh", "spooky") grounds a choice.
bool describes_a_kind(std::string_view message, const ConstraintUpdate& rules) {
  // Request words, domain nouns, era words and fillers: what a plain request is made of.
  static const std::set<std::string> plain = [] {
    const std::vector<std::string> words = text::split(
        "hi hello hey thanks thank can could would will you please pls recommend recommended "
        "recommendation recommendations suggest suggestion suggestions some a an the few any "
        "more other another good great best nice new me my i i'm im i'd id for to of what "
        "which should watch watching play playing see next tonight today now give show list "
        "find get want need like love and or is are there something anything else options "
        "ideas picks pick titles title movie movies film films flick flicks game games video "
        "gaming cinema from after before since between recent old older newer latest era "
        "decade year years in on with that this it do have know maybe also too us we our tell "
        "about similar such as not no instead than one ones lots bunch couple just really so "
        "all your favorite favourite top okay ok yes sure",
        ' ');
    return std::set<std::string>(words.begin(), words.end());
  }();
  std::string t = text::to_lower(message);
  // Titles after "like" / "not" cues are the matcher's anchors, not descriptions.
  for (const auto* titles : {&rules.like_titles, &rules.not_titles}) {
    for (const auto& title : *titles) {
      const std::size_t at = t.find(text::to_lower(title));
      if (at != std::string::npos) t.erase(at, title.size());
    }
  }
  std::string word;
  auto is_content = [&] {
    const bool digits = std::any_of(word.begin(), word.end(), [](char ch) {
      return std::isdigit(static_cast<unsigned char>(ch));
    });
    return !word.empty() && !digits && word.size() > 1 && !plain.contains(word);
  };
  for (char ch : t + " ") {
    if (std::isalnum(static_cast<unsigned char>(ch)) || ch == '\'') {
      word += ch;
      continue;
    }
    if (is_content()) return true;
    word.clear();
  }
  return false;
}

}  // namespace

ConstraintUpdate extract_constraints(llm::LanguageModel* lm, std::string_view text,
                                     const std::string& current_domain,
                                     const ConstraintVocabulary& vocab, double timeout_seconds,
                                     Stats* stats, std::vector<std::string>* notes,
                                     ConstraintStyle style) {
  ConstraintUpdate rules = extract_constraints_rules(text, current_domain, vocab);
  if (!lm) return rules;
  if (style == ConstraintStyle::kChoice) {
    const std::string domain = rules.domain.value_or(current_domain);
    const auto categories =
        vocab.categories ? vocab.categories(domain) : std::vector<std::string>{};
    std::optional<std::string> genre;
    // A genre named in the message needs no model; nor does a domain without categories, nor a
    // message that describes no kind of item (the model's pick would be ungrounded).
    if (rules.genres_wanted.empty() && !categories.empty() && describes_a_kind(text, rules))
      genre = genre_by_choice(*lm, text, domain, categories, timeout_seconds, stats, notes);
    if (!genre || genre->empty()) return rules;
    if (std::find(rules.genres_unwanted.begin(), rules.genres_unwanted.end(), *genre) ==
        rules.genres_unwanted.end()) {
      rules.genres_wanted.push_back(*genre);
      rules.decided_by = "llm+rules";
    }
    return rules;
  }
  llm::GenerationOptions options;
  options.max_tokens = 64;
  options.stop = {"\n\n", "}\n"};
  const std::string domain = rules.domain.value_or(current_domain);
  const auto categories = vocab.categories ? vocab.categories(domain) : std::vector<std::string>{};
  LlmCallResult r = call_chat(*lm, constraints_prompt(text, current_domain, categories), options,
                              timeout_seconds, stats);
  std::optional<ConstraintUpdate> parsed;
  if (r.completion) {
    std::string answer = r.completion->text;
    if (answer.find('{') != std::string::npos && answer.find('}') == std::string::npos)
      answer += "}";
    parsed = parse_constraints_json(answer, text, current_domain, vocab, stats);
    if (!parsed) {
      if (stats) stats->fail("unparseable", "rules_constraints");
      if (notes)
        notes->push_back(
            "constraints: the LLM's answer was not valid JSON; the catalogue matcher decided");
    }
  } else {
    if (stats) stats->fail(r.failure, "rules_constraints");
    if (notes) notes->push_back("constraints: " + r.message + "; the catalogue matcher decided");
  }
  if (!parsed) return rules;
  ConstraintUpdate u = *parsed;
  bool rules_used = false;
  if (!u.domain && rules.domain && *rules.domain != current_domain)
    u.domain = rules.domain, rules_used = true;
  for (const auto& g : rules.genres_wanted) {
    if (std::find(u.genres_unwanted.begin(), u.genres_unwanted.end(), g) ==
            u.genres_unwanted.end() &&
        std::find(u.genres_wanted.begin(), u.genres_wanted.end(), g) == u.genres_wanted.end()) {
      u.genres_wanted.push_back(g);
      rules_used = true;
    }
  }
  for (const auto& g : rules.genres_unwanted) {
    // The matcher sees the negation the model may have missed.
    u.genres_wanted.erase(std::remove(u.genres_wanted.begin(), u.genres_wanted.end(), g),
                          u.genres_wanted.end());
    if (std::find(u.genres_unwanted.begin(), u.genres_unwanted.end(), g) ==
        u.genres_unwanted.end()) {
      u.genres_unwanted.push_back(g);
      rules_used = true;
    }
  }
  if (!u.year_min && !u.year_max && (rules.year_min || rules.year_max)) {
    u.year_min = rules.year_min;
    u.year_max = rules.year_max;
    rules_used = true;
  }
  u.clear_years = u.clear_years || rules.clear_years;
  for (const auto& x : rules.like_titles) add_unique(u.like_titles, x), rules_used = true;
  for (const auto& x : rules.not_titles) add_unique(u.not_titles, x), rules_used = true;
  const bool llm_used = !parsed->empty();
  u.decided_by = llm_used && rules_used ? "llm+rules" : llm_used ? "llm" : "rules";
  return u;
}

void apply_update(const ConstraintUpdate& u, Constraints& c) {
  if (u.domain && *u.domain != c.domain) {
    c.domain = *u.domain;
    c.genres_wanted.clear();
    c.genres_unwanted.clear();
    c.year_min = c.year_max = 0;
  }
  if (!u.genres_wanted.empty()) c.genres_wanted = u.genres_wanted;
  for (const auto& g : u.genres_unwanted) {
    add_unique(c.genres_unwanted, g);
    c.genres_wanted.erase(std::remove(c.genres_wanted.begin(), c.genres_wanted.end(), g),
                          c.genres_wanted.end());
  }
  for (const auto& g : u.genres_wanted) {
    c.genres_unwanted.erase(std::remove(c.genres_unwanted.begin(), c.genres_unwanted.end(), g),
                            c.genres_unwanted.end());
  }
  if (u.clear_years) c.year_min = c.year_max = 0;
  if (u.year_min || u.year_max) {
    c.year_min = u.year_min.value_or(0);
    c.year_max = u.year_max.value_or(0);
  }
}

bool satisfies(const data::Item& item, const Constraints& c) {
  const auto has_category = [&](const std::string& g) {
    return std::any_of(item.categories.begin(), item.categories.end(),
                       [&](const std::string& x) { return text::iequals(x, g); });
  };
  if (!c.genres_wanted.empty() &&
      std::none_of(c.genres_wanted.begin(), c.genres_wanted.end(), has_category)) {
    return false;
  }
  if (std::any_of(c.genres_unwanted.begin(), c.genres_unwanted.end(), has_category)) return false;
  if (c.year_min > 0 && (item.year == 0 || item.year < c.year_min)) return false;
  if (c.year_max > 0 && (item.year == 0 || item.year > c.year_max)) return false;
  return true;
}

std::string describe(const Constraints& c) {
  std::vector<std::string> parts;
  if (!c.genres_wanted.empty()) parts.push_back(text::join(c.genres_wanted, " or ") + " only");
  if (!c.genres_unwanted.empty()) parts.push_back("no " + text::join(c.genres_unwanted, ", no "));
  if (c.year_min > 0 && c.year_max > 0) {
    parts.push_back("from " + std::to_string(c.year_min) + " to " + std::to_string(c.year_max));
  } else if (c.year_min > 0) {
    parts.push_back("from " + std::to_string(c.year_min) + " on");
  } else if (c.year_max > 0) {
    parts.push_back("up to " + std::to_string(c.year_max));
  }
  return text::join(parts, ", ");
}

}  // namespace chatrec::chat
