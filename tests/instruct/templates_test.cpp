#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <set>

#include "common/error.h"
#include "instruct/templates.h"
#include "testing/test_env.h"

namespace chatrec::instruct {
namespace {

std::string error_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const InputError& e) {
    return e.what();
  }
  return "";
}

TEST(InstructTemplates, BuiltinSetHasThe39CoarseTemplatesInValidCells) {
  const TemplateSet& set = builtin_templates();
  std::map<std::string, int> groups;
  std::set<std::string> ids;
  for (const Template* t : set.coarse()) {
    ++groups[t->group];
    ids.insert(t->id);
    EXPECT_GE(t->cell.p, 0);
    EXPECT_LE(t->cell.p, 2);
    EXPECT_GE(t->cell.i, 0);
    EXPECT_LE(t->cell.i, 2);
    EXPECT_GE(t->cell.t, 0);
    EXPECT_LE(t->cell.t, 3);
    EXPECT_FALSE(t->cell.p == 0 && t->cell.i == 0) << t->id;
  }
  EXPECT_EQ(set.coarse().size(), 39u);
  EXPECT_EQ(ids.size(), 39u);
  EXPECT_EQ(groups["preference"], 17);
  EXPECT_EQ(groups["intention"], 9);
  EXPECT_EQ(groups["both"], 13);
  // The two scenarios the evaluation uses exist in the expected cells.
  EXPECT_EQ(set.at("P07").cell.str(), "P1,I0,T3");
  EXPECT_EQ(set.at("B07").cell.str(), "P1,I2,T3");
  EXPECT_FALSE(set.system.empty());
}

TEST(InstructTemplates, VariantsCoverReverseRelatednessAndChainOfThought) {
  std::set<std::string> kinds;
  for (const auto& t : builtin_templates().templates) {
    if (!t.is_coarse()) kinds.insert(t.kind);
  }
  EXPECT_EQ(kinds, (std::set<std::string>{"cot", "relatedness", "reverse"}));
}

TEST(InstructTemplates, AssetFileMatchesTheCompiledInSet) {
  const auto file = std::filesystem::path(CHATREC_SOURCE_DIR) / "assets/instruct/templates.json";
  const TemplateSet set = load_templates(file);
  ASSERT_EQ(set.templates.size(), builtin_templates().templates.size());
  for (std::size_t k = 0; k < set.templates.size(); ++k) {
    EXPECT_EQ(set.templates[k].id, builtin_templates().templates[k].id);
    EXPECT_EQ(set.templates[k].prompt, builtin_templates().templates[k].prompt);
  }
}

std::string one_template(const std::string& body) {
  return R"({"system":"s","templates":[)" + body + "]}";
}

TEST(InstructTemplates, UnknownFieldIsAnErrorNamingFileAndTemplate) {
  const std::string msg = error_of([] {
    parse_templates(
        one_template(R"({"id":"X1","group":"preference","cell":["P1","I0","T2"],"output":"title",
        "prompt":"{history} and {favourite_colour}","answer":"{target}"})"),
        "my_templates.json");
  });
  EXPECT_NE(msg.find("my_templates.json"), std::string::npos) << msg;
  EXPECT_NE(msg.find("X1"), std::string::npos) << msg;
  EXPECT_NE(msg.find("favourite_colour"), std::string::npos) << msg;
}

TEST(InstructTemplates, MissingOrInvalidCellIsAnErrorNamingFileAndTemplate) {
  std::string msg = error_of([] {
    parse_templates(one_template(R"({"id":"NoCell","group":"preference","output":"title",
        "prompt":"{history}","answer":"{target}"})"),
                    "t.json");
  });
  EXPECT_NE(msg.find("t.json"), std::string::npos) << msg;
  EXPECT_NE(msg.find("NoCell"), std::string::npos) << msg;
  EXPECT_NE(msg.find("missing cell"), std::string::npos) << msg;

  msg = error_of([] {
    parse_templates(
        one_template(R"({"id":"Bad","group":"preference","cell":["P3","I0","T2"],"output":"title",
        "prompt":"{history}","answer":"{target}"})"),
        "t.json");
  });
  EXPECT_NE(msg.find("Bad"), std::string::npos) << msg;
  EXPECT_NE(msg.find("P3"), std::string::npos) << msg;
}

TEST(InstructTemplates, CellMustAgreeWithTheFieldsUsed) {
  // Claims P2 (explicit preference) but only uses the history.
  EXPECT_NE(error_of([] {
              parse_templates(
                  one_template(R"({"id":"C1","group":"preference","cell":["P2","I0","T2"],
        "output":"title","prompt":"{history}","answer":"{target}"})"),
                  "t.json");
            }).find("P2 needs {explicit_preference}"),
            std::string::npos);
  // T3 without candidates.
  EXPECT_NE(error_of([] {
              parse_templates(
                  one_template(R"({"id":"C2","group":"preference","cell":["P1","I0","T3"],
        "output":"candidate","prompt":"{history}","answer":"{target}"})"),
                  "t.json");
            }).find("T3 needs {candidates}"),
            std::string::npos);
  // Group contradicting the cell.
  EXPECT_NE(error_of([] {
              parse_templates(
                  one_template(R"({"id":"C3","group":"intention","cell":["P1","I0","T2"],
        "output":"title","prompt":"{history}","answer":"{target}"})"),
                  "t.json");
            }).find("group"),
            std::string::npos);
  // Duplicate ids.
  const std::string ok = R"({"id":"D","group":"preference","cell":["P1","I0","T2"],"output":"title",
        "prompt":"{history}","answer":"{target}"})";
  EXPECT_NE(
      error_of([&] { parse_templates(one_template(ok + "," + ok), "t.json"); }).find("duplicate"),
      std::string::npos);
  EXPECT_NO_THROW(parse_templates(one_template(ok), "t.json"));
}

TEST(InstructTemplates, FileErrorsNameTheFile) {
  testing::TempDir dir;
  const auto file = dir.path() / "broken.json";
  std::ofstream(file) << "{ not json";
  EXPECT_NE(error_of([&] { load_templates(file); }).find("broken.json"), std::string::npos);
  EXPECT_NE(error_of([&] { load_templates(dir.path() / "absent.json"); }).find("absent.json"),
            std::string::npos);
}

// Found by the templates fuzz target: the JSON library's other exceptions escaped as themselves.
TEST(InstructTemplates, OutOfRangeNumbersAndANonStringSystemAreInputErrors) {
  EXPECT_NE(error_of([] {
              parse_templates(R"({"templates": [], "x": 1e400})", "big.json");
            }).find("big.json"),
            std::string::npos);
  EXPECT_NE(error_of([] {
              parse_templates(R"({"system": 5, "templates": []})", "sys.json");
            }).find("'system' must be a string"),
            std::string::npos);
}

TEST(InstructRender, FillsFieldsVerbatimAndNamesMissingOnes) {
  EXPECT_EQ(fill("Liked: {history}. Next?", {{"history", "A {item} B"}}, "T"),
            "Liked: A {item} B. Next?");
  EXPECT_EQ(fill("literal { brace } and {} stay", {}, "T"), "literal { brace } and {} stay");
  const std::string msg = error_of([] {
    fill("{history} then {candidates}", {{"history", "h"}}, "P07");
  });
  EXPECT_NE(msg.find("P07"), std::string::npos) << msg;
  EXPECT_NE(msg.find("candidates"), std::string::npos) << msg;
  EXPECT_NE(error_of([] { placeholders("oops {history", "f.json", "Z9"); }).find("Z9"),
            std::string::npos);

  const TemplateSet& set = builtin_templates();
  const Rendered r =
      render(set, set.at("P07"), {{"history", "- Mario"}, {"candidates", "1. Zelda\n2. Cable"}},
             {{"target", "Zelda"}});
  EXPECT_EQ(r.system, set.system);
  EXPECT_NE(r.prompt.find("- Mario"), std::string::npos);
  EXPECT_NE(r.prompt.find("2. Cable"), std::string::npos);
  EXPECT_EQ(r.answer, "Zelda");
}

}  // namespace
}  // namespace chatrec::instruct
