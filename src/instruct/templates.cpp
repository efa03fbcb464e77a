#include "instruct/templates.h"

#include <fmt/format.h>

#include <algorithm>
#include <fstream>
#include <nlohmann/json.hpp>
#include <set>
#include <sstream>

#include "common/error.h"

namespace chatrec::instruct {

namespace {
using nlohmann::json;

bool is_name_char(char c) {
  return (c >= 'a' && c <= 'z') || c == '_';
}

bool contains(const std::vector<std::string>& v, std::string_view s) {
  return std::find(v.begin(), v.end(), s) != v.end();
}

int parse_level(const std::string& text, char letter, int max_level, const std::string& source,
                const std::string& id) {
  if (text.size() == 2 && text[0] == letter && text[1] >= '0' && text[1] <= '0' + max_level) {
    return text[1] - '0';
  }
  throw InputError(source, 0, "cell",
                   fmt::format("template {}: '{}' is not a valid {} level ({}0..{}{})", id, text,
                               letter, letter, letter, max_level));
}

std::string need_string(const json& j, const char* key, const std::string& source,
                        const std::string& id, bool required = true) {
  auto it = j.find(key);
  if (it == j.end()) {
    if (!required) return "";
    throw InputError(source, 0, key, fmt::format("template {}: missing '{}'", id, key));
  }
  if (!it->is_string())
    throw InputError(source, 0, key, fmt::format("template {}: '{}' must be a string", id, key));
  return it->get<std::string>();
}

// The cell must agree with what the template actually asks for, so that counts per cell mean
// something.
void check_consistency(const Template& t, const std::string& source) {
  auto fail = [&](const std::string& problem) {
    throw InputError(source, 0, "cell",
                     fmt::format("template {} ({}): {}", t.id, t.cell.str(), problem));
  };
  const bool history = t.uses("history"), explicit_pref = t.uses("explicit_preference");
  const bool vague = t.uses("vague_intention"), specific = t.uses("specific_intention");
  if (t.cell.p == 0 && (history || explicit_pref)) fail("P0 but uses a preference field");
  if (t.cell.p == 1 && !history) fail("P1 needs {history}");
  if (t.cell.p == 2 && !explicit_pref) fail("P2 needs {explicit_preference}");
  if (t.cell.i == 0 && (vague || specific)) fail("I0 but uses an intention field");
  if (t.cell.i == 1 && !vague) fail("I1 needs {vague_intention}");
  if (t.cell.i == 2 && !specific) fail("I2 needs {specific_intention}");
  const bool cands = t.uses("candidates"), pair = t.uses("item_a") || t.uses("item_b");
  switch (t.cell.t) {
    case 0:
      if (t.output != "yes_no") fail("T0 answers Yes or No (output \"yes_no\")");
      if (t.contrast == "item" && !contains(t.prompt_fields, "item"))
        fail("T0 contrasting items needs {item}");
      break;
    case 1:
      if (!contains(t.prompt_fields, "item_a") || !contains(t.prompt_fields, "item_b")) {
        fail("T1 needs {item_a} and {item_b}");
      }
      break;
    case 2:
      if (cands || pair) fail("T2 (matching) must not give candidates or a pair");
      break;
    case 3:
      if (!contains(t.prompt_fields, "candidates")) fail("T3 needs {candidates}");
      break;
  }
  if (t.cell.t != 3 && cands) fail("only T3 lists {candidates}");
  if (t.cell.t != 1 && pair) fail("only T1 uses {item_a}/{item_b}");
  if (t.output == "yes_no" && !contains(t.answer_fields, "label"))
    fail("a yes_no answer must be {label}");
  if (t.is_coarse()) {
    const std::string expected = t.cell.p != 0 && t.cell.i == 0   ? "preference"
                                 : t.cell.p == 0 && t.cell.i != 0 ? "intention"
                                 : t.cell.p != 0 && t.cell.i != 0 ? "both"
                                                                  : "";
    if (expected.empty()) fail("a coarse template needs a preference or an intention");
    if (t.group != expected)
      fail(fmt::format("group is '{}' but the cell makes it '{}'", t.group, expected));
  }
}

Template parse_one(const json& j, bool coarse, const std::string& source, std::size_t index) {
  Template t;
  if (!j.is_object())
    throw InputError(source, 0, "templates", fmt::format("entry {} is not an object", index));
  t.id = need_string(j, "id", source, fmt::format("#{}", index));
  if (t.id.empty())
    throw InputError(source, 0, "id", fmt::format("entry {} has an empty id", index));
  if (coarse) {
    t.group = need_string(j, "group", source, t.id);
    t.kind = "coarse";
  } else {
    t.group = "variant";
    t.kind = need_string(j, "kind", source, t.id);
    if (t.kind != "reverse" && t.kind != "relatedness" && t.kind != "cot") {
      throw InputError(
          source, 0, "kind",
          fmt::format("template {}: unknown variant kind '{}' (reverse, relatedness, cot)", t.id,
                      t.kind));
    }
    t.base = need_string(j, "base", source, t.id, false);
  }
  auto cell = j.find("cell");
  if (cell == j.end())
    throw InputError(source, 0, "cell", fmt::format("template {}: missing cell", t.id));
  if (!cell->is_array() || cell->size() != 3 || !(*cell)[0].is_string() ||
      !(*cell)[1].is_string() || !(*cell)[2].is_string()) {
    throw InputError(source, 0, "cell",
                     fmt::format("template {}: cell must be [\"P.\", \"I.\", \"T.\"]", t.id));
  }
  t.cell.p = parse_level((*cell)[0].get<std::string>(), 'P', 2, source, t.id);
  t.cell.i = parse_level((*cell)[1].get<std::string>(), 'I', 2, source, t.id);
  t.cell.t = parse_level((*cell)[2].get<std::string>(), 'T', 3, source, t.id);
  t.output = need_string(j, "output", source, t.id);
  static const std::vector<std::string> kOutputs = {
      "yes_no", "choice", "title", "candidate", "candidate_reasoning", "text"};
  if (!contains(kOutputs, t.output)) {
    throw InputError(source, 0, "output",
                     fmt::format("template {}: unknown output form '{}'", t.id, t.output));
  }
  t.contrast = need_string(j, "contrast", source, t.id, false);
  if (t.contrast.empty() && t.output == "yes_no") t.contrast = "item";
  if (!t.contrast.empty() && t.contrast != "item" && t.contrast != "intention") {
    throw InputError(source, 0, "contrast",
                     fmt::format("template {}: contrast must be \"item\" or \"intention\"", t.id));
  }
  t.prompt = need_string(j, "prompt", source, t.id);
  t.answer = need_string(j, "answer", source, t.id);
  t.prompt_fields = placeholders(t.prompt, source, t.id);
  t.answer_fields = placeholders(t.answer, source, t.id);
  for (const auto& f : t.prompt_fields) {
    if (!contains(prompt_field_names(), f)) {
      throw InputError(source, 0, "prompt",
                       fmt::format("template {}: unknown field {{{}}}", t.id, f));
    }
  }
  for (const auto& f : t.answer_fields) {
    if (!contains(answer_field_names(), f)) {
      throw InputError(source, 0, "answer",
                       fmt::format("template {}: unknown answer field {{{}}}", t.id, f));
    }
  }
  for (auto it = j.begin(); it != j.end(); ++it) {
    static const std::set<std::string> kKeys = {"id",     "group",    "kind",   "base",  "cell",
                                                "output", "contrast", "prompt", "answer"};
    if (!kKeys.count(it.key())) {
      throw InputError(source, 0, it.key(),
                       fmt::format("template {}: unknown key '{}'", t.id, it.key()));
    }
  }
  check_consistency(t, source);
  return t;
}

}  // namespace

std::string Cell::str() const {
  return fmt::format("P{},I{},T{}", p, i, t);
}

const std::vector<std::string>& prompt_field_names() {
  static const std::vector<std::string> names = {"history",         "explicit_preference",
                                                 "vague_intention", "specific_intention",
                                                 "candidates",      "item",
                                                 "item_a",          "item_b"};
  return names;
}

const std::vector<std::string>& answer_field_names() {
  static const std::vector<std::string> names = {
      "target", "label", "explicit_preference", "vague_intention", "specific_intention", "recent"};
  return names;
}

bool Template::uses(std::string_view field) const {
  return contains(prompt_fields, field) || contains(answer_fields, field);
}

std::vector<std::string> placeholders(std::string_view text, const std::string& source,
                                      const std::string& template_id) {
  std::vector<std::string> out;
  for (std::size_t pos = 0; pos < text.size(); ++pos) {
    if (text[pos] != '{') continue;
    std::size_t end = pos + 1;
    while (end < text.size() && is_name_char(text[end])) ++end;
    if (end == pos + 1) continue;  // a literal brace
    if (end >= text.size() || text[end] != '}') {
      throw InputError(
          source, 0, "prompt",
          fmt::format("template {}: unterminated placeholder at offset {}", template_id, pos));
    }
    std::string name(text.substr(pos + 1, end - pos - 1));
    if (!contains(out, name)) out.push_back(std::move(name));
    pos = end;
  }
  return out;
}

std::string fill(std::string_view text, const Fields& fields, const std::string& template_id) {
  std::string out;
  out.reserve(text.size() + 256);
  for (std::size_t pos = 0; pos < text.size(); ++pos) {
    const char c = text[pos];
    if (c == '{') {
      std::size_t end = pos + 1;
      while (end < text.size() && is_name_char(text[end])) ++end;
      if (end > pos + 1 && end < text.size() && text[end] == '}') {
        std::string name(text.substr(pos + 1, end - pos - 1));
        auto it = fields.find(name);
        if (it == fields.end()) {
          throw InputError("template " + template_id, 0, name,
                           fmt::format("template {}: no value for {{{}}}", template_id, name));
        }
        out += it->second;
        pos = end;
        continue;
      }
    }
    out += c;
  }
  return out;
}

Rendered render(const TemplateSet& set, const Template& t, const Fields& prompt_fields,
                const Fields& answer_fields) {
  return Rendered{set.system, fill(t.prompt, prompt_fields, t.id),
                  fill(t.answer, answer_fields, t.id)};
}

const Template* TemplateSet::find(std::string_view id) const {
  for (const auto& t : templates) {
    if (t.id == id) return &t;
  }
  return nullptr;
}

const Template& TemplateSet::at(std::string_view id) const {
  if (const Template* t = find(id)) return *t;
  throw InputError(source, 0, "id", fmt::format("no template with id '{}'", id));
}

std::vector<const Template*> TemplateSet::coarse() const {
  std::vector<const Template*> out;
  for (const auto& t : templates) {
    if (t.is_coarse()) out.push_back(&t);
  }
  return out;
}

std::vector<const Template*> TemplateSet::in_cell(const Cell& cell) const {
  std::vector<const Template*> out;
  for (const auto& t : templates) {
    if (t.cell == cell) out.push_back(&t);
  }
  return out;
}

TemplateSet parse_templates(std::string_view json_text, const std::string& source_name) {
  json j;
  try {
    j = json::parse(json_text);
  } catch (const json::exception& e) {
    // Not only parse_error: a number too large for a double ("1e400") is an out_of_range.
    throw InputError(source_name, 0, "", fmt::format("not valid JSON: {}", e.what()));
  }
  if (!j.is_object()) throw InputError(source_name, 0, "", "expected a JSON object");
  TemplateSet set;
  set.source = source_name;
  if (auto system = j.find("system"); system != j.end()) {
    if (!system->is_string())
      throw InputError(source_name, 0, "system", "'system' must be a string");
    set.system = system->get<std::string>();
  }
  auto list = j.find("templates");
  if (list == j.end() || !list->is_array()) {
    throw InputError(source_name, 0, "templates", "missing the 'templates' array");
  }
  std::set<std::string> ids;
  auto add = [&](const json& arr, bool coarse) {
    for (std::size_t k = 0; k < arr.size(); ++k) {
      Template t = parse_one(arr[k], coarse, source_name, k);
      if (!ids.insert(t.id).second) {
        throw InputError(source_name, 0, "id", fmt::format("template {}: duplicate id", t.id));
      }
      set.templates.push_back(std::move(t));
    }
  };
  add(*list, true);
  if (auto variants = j.find("variants"); variants != j.end()) {
    if (!variants->is_array())
      throw InputError(source_name, 0, "variants", "'variants' must be an array");
    add(*variants, false);
  }
  for (const auto& t : set.templates) {
    if (!t.base.empty() && !set.find(t.base)) {
      throw InputError(source_name, 0, "base",
                       fmt::format("template {}: base '{}' does not exist", t.id, t.base));
    }
  }
  return set;
}

TemplateSet load_templates(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  if (!in) throw InputError(file.string(), 0, "", "cannot open the template file");
  std::stringstream ss;
  ss << in.rdbuf();
  return parse_templates(ss.str(), file.string());
}

}  // namespace chatrec::instruct
