#pragma once
// InstructRec instruction templates: loaded from data files (assets/instruct/templates.json),
// validated, and rendered by filling {field} placeholders. Each template sits in one (P, I, T)
// cell:
//   P0 no preference, P1 implicit (history titles), P2 explicit (a sentence about taste);
//   I0 no intention, I1 vague (a loose need), I2 specific (category labels);
//   T0 pointwise yes/no, T1 pairwise, T2 matching (produce an item), T3 reranking (pick from
//   candidates).
#include <filesystem>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace chatrec::instruct {

struct Cell {
  int p = 0;                // 0..2
  int i = 0;                // 0..2
  int t = 0;                // 0..3
  std::string str() const;  // "P1,I0,T3"
  friend bool operator==(const Cell&, const Cell&) = default;
  friend auto operator<=>(const Cell&, const Cell&) = default;
};

// Placeholders a prompt may use, and those an answer may use.
const std::vector<std::string>& prompt_field_names();
const std::vector<std::string>& answer_field_names();

struct Template {
  std::string id;
  std::string
      group;  // "preference", "intention", "both" for the 39 coarse templates; "variant" otherwise
  std::string kind;  // "coarse", "reverse", "relatedness", "cot"
  std::string base;  // the coarse template a variant derives from (may be empty)
  Cell cell;
  std::string output;    // "yes_no", "choice", "title", "candidate", "candidate_reasoning", "text"
  std::string contrast;  // for yes_no: what a negative example swaps, "item" or "intention"
  std::string prompt;
  std::string answer;
  std::vector<std::string> prompt_fields;   // placeholders of `prompt`, first-seen order
  std::vector<std::string> answer_fields;   // placeholders of `answer`
  bool uses(std::string_view field) const;  // in prompt or answer
  bool is_coarse() const { return kind == "coarse"; }
};

struct TemplateSet {
  std::string source;  // file the set was loaded from, for error messages
  std::string system;  // system message of every instruction
  std::vector<Template> templates;

  const Template& at(std::string_view id) const;  // throws InputError naming the source
  const Template* find(std::string_view id) const;
  std::vector<const Template*> coarse() const;
  std::vector<const Template*> in_cell(const Cell& cell) const;
};

// Throws chatrec::InputError naming the file and template id on any problem: unknown placeholder,
// missing or malformed cell, a cell that contradicts the fields used, unknown output form,
// duplicate id.
TemplateSet parse_templates(std::string_view json_text, const std::string& source_name);
TemplateSet load_templates(const std::filesystem::path& file);
// The templates shipped in assets/instruct/templates.json, compiled into the library.
const TemplateSet& builtin_templates();

using Fields = std::map<std::string, std::string>;

// Replaces each {name} in `text` by fields[name]. A placeholder without a value throws InputError
// naming `template_id`. Values are inserted verbatim (never re-scanned), so titles containing
// braces are safe.
std::string fill(std::string_view text, const Fields& fields, const std::string& template_id);

struct Rendered {
  std::string system;
  std::string prompt;
  std::string answer;
};
Rendered render(const TemplateSet& set, const Template& t, const Fields& prompt_fields,
                const Fields& answer_fields);

// The placeholders of a text, first-seen order; throws InputError on an unterminated or empty
// brace.
std::vector<std::string> placeholders(std::string_view text, const std::string& source,
                                      const std::string& template_id);

}  // namespace chatrec::instruct
