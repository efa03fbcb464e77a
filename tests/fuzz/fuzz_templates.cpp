// The InstructRec template loader (instruct/templates.h) on arbitrary JSON text.
//
// Properties: a bad file is an InputError naming the problem (anything else escaping, e.g. a JSON
// library exception, is a bug); an accepted set only uses known placeholders and keeps ids unique;
// written back in the file format it parses to the same set; rendering with every field given
// succeeds and leaves none of the template's placeholders behind, and with none given raises
// InputError for any template that has one.
#include <cstddef>
#include <cstdint>
#include <set>
#include <string>

#include <nlohmann/json.hpp>

#include "common/error.h"
#include "fuzz_util.h"
#include "instruct/templates.h"

namespace {

using namespace chatrec::instruct;
using nlohmann::json;

json to_file_json(const TemplateSet& set) {
  json coarse = json::array(), variants = json::array();
  for (const Template& t : set.templates) {
    json j{{"id", t.id},
           {"cell",
            {"P" + std::to_string(t.cell.p), "I" + std::to_string(t.cell.i),
             "T" + std::to_string(t.cell.t)}},
           {"output", t.output},
           {"prompt", t.prompt},
           {"answer", t.answer}};
    if (!t.contrast.empty()) j["contrast"] = t.contrast;
    if (t.is_coarse()) {
      j["group"] = t.group;
      coarse.push_back(j);
    } else {
      j["kind"] = t.kind;
      if (!t.base.empty()) j["base"] = t.base;
      variants.push_back(j);
    }
  }
  json out{{"system", set.system}, {"templates", coarse}};
  if (!variants.empty()) out["variants"] = variants;
  return out;
}

bool same(const Template& a, const Template& b) {
  return a.id == b.id && a.group == b.group && a.kind == b.kind && a.base == b.base &&
         a.cell == b.cell && a.output == b.output && a.contrast == b.contrast &&
         a.prompt == b.prompt && a.answer == b.answer && a.prompt_fields == b.prompt_fields &&
         a.answer_fields == b.answer_fields;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  TemplateSet set;
  try {
    set = parse_templates(chatrec::fuzz::text_of(data, size), "fuzz.json");
  } catch (const chatrec::InputError&) {
    return 0;
  }
  std::set<std::string> ids;
  Fields prompt_values, answer_values;
  for (const auto& name : prompt_field_names()) prompt_values[name] = "<" + name + ">";
  for (const auto& name : answer_field_names()) answer_values[name] = "<" + name + ">";
  for (const Template& t : set.templates) {
    FUZZ_CHECK(!t.id.empty() && ids.insert(t.id).second);
    FUZZ_CHECK(t.cell.p >= 0 && t.cell.p <= 2 && t.cell.i >= 0 && t.cell.i <= 2 && t.cell.t >= 0 &&
               t.cell.t <= 3);
    FUZZ_CHECK(t.base.empty() || set.find(t.base) != nullptr);
    const Rendered r = render(set, t, prompt_values, answer_values);
    // The values hold no braces, so a placeholder left in the output was never filled.
    for (const auto& f : t.prompt_fields)
      FUZZ_CHECK(r.prompt.find("{" + f + "}") == std::string::npos);
    for (const auto& f : t.answer_fields)
      FUZZ_CHECK(r.answer.find("{" + f + "}") == std::string::npos);
    if (!t.prompt_fields.empty()) {
      bool threw = false;
      try {
        chatrec::instruct::fill(t.prompt, {}, t.id);
      } catch (const chatrec::InputError&) {
        threw = true;
      }
      FUZZ_CHECK(threw);
    }
  }

  const TemplateSet again = parse_templates(to_file_json(set).dump(), "fuzz.json");
  FUZZ_CHECK(again.system == set.system);
  FUZZ_CHECK(again.templates.size() == set.templates.size());
  for (std::size_t i = 0; i < set.templates.size(); ++i)
    FUZZ_CHECK(same(again.templates[i], set.templates[i]));
  return 0;
}
