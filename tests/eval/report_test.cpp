#include "eval/report.h"

#include <gtest/gtest.h>

#include <fstream>

#include "testing/test_env.h"

namespace chatrec::eval {
namespace {

Report sample_report() {
  Report r;
  r.protocol = "ml100k-topk";
  r.seed = 2023;
  r.model = "itemknn";
  r.dataset = "ml-100k";
  r.dataset_checksum = "abc123";
  r.users = 200;
  r.wall_seconds = 1.5;
  r.llm_backend = "builtin";
  r.llm_model_file = "/models/m.gguf";
  ModelResult base;
  base.model = "itemknn";
  base.params = {{"k", "50"}};
  base.metrics = {{"P@5", 0.25}, {"NDCG@5", 0.3}};
  base.users = 200;
  ModelResult llm = base;
  llm.model = "itemknn+chatrec";
  llm.stage = "chatrec";
  StageStats s;
  s.prompts = 200;
  s.tokens_in = 1000;
  s.tokens_out = 50;
  s.failures = {{"unparseable", 3}, {"out_of_candidates", 2}};
  s.resolutions = {{"base order", 3}, {"dropped", 2}};
  llm.stage_stats = s;
  r.results = {base, llm};
  return r;
}

TEST(Report, JsonHasEveryRequiredField) {
  auto j = to_json(sample_report());
  EXPECT_EQ(j["protocol"], "ml100k-topk");
  EXPECT_EQ(j["seed"], 2023);
  EXPECT_EQ(j["dataset"]["checksum"], "abc123");
  EXPECT_EQ(j["model"], "itemknn");
  EXPECT_EQ(j["llm"]["backend"], "builtin");
  EXPECT_EQ(j["llm"]["model_file"], "/models/m.gguf");
  EXPECT_EQ(j["users"], 200);
  EXPECT_DOUBLE_EQ(j["wall_seconds"].get<double>(), 1.5);
  ASSERT_EQ(j["results"].size(), 2u);
  EXPECT_EQ(j["results"][0]["params"]["k"], "50");
  EXPECT_DOUBLE_EQ(j["results"][0]["metrics"]["P@5"].get<double>(), 0.25);
  EXPECT_FALSE(j["results"][0].contains("stage_stats"));
  const auto& st = j["results"][1]["stage_stats"];
  EXPECT_EQ(st["prompts"], 200);
  EXPECT_EQ(st["tokens_in"], 1000);
  EXPECT_EQ(st["tokens_out"], 50);
  EXPECT_EQ(st["failures"]["unparseable"], 3);
  EXPECT_EQ(st["resolutions"]["dropped"], 2);
}

TEST(Report, NoLlmMeansNullLlm) {
  auto r = sample_report();
  r.llm_backend.clear();
  EXPECT_TRUE(to_json(r)["llm"].is_null());
}

TEST(Report, TableListsModelsMetricsAndStageCounters) {
  auto t = format_table(sample_report());
  EXPECT_NE(t.find("P@5"), std::string::npos);
  EXPECT_NE(t.find("NDCG@5"), std::string::npos);
  EXPECT_NE(t.find("0.2500"), std::string::npos);
  EXPECT_NE(t.find("itemknn+chatrec"), std::string::npos);
  EXPECT_NE(t.find("failure unparseable x3"), std::string::npos);
}

TEST(Report, WrittenFileRoundTrips) {
  chatrec::testing::TempDir dir;
  auto r = sample_report();
  EXPECT_EQ(default_report_path(r), "reports/ml100k-topk-itemknn-seed2023.json");
  auto path = (dir.path() / "nested" / "r.json").string();
  write_report(r, path);
  std::ifstream in(path);
  auto j = nlohmann::json::parse(in);
  EXPECT_EQ(j, to_json(r));
}

TEST(Report, LlmSpecDescription) {
  EXPECT_EQ(describe_llm_spec("builtin", "/d/m.gguf"),
            std::make_pair(std::string("builtin"), std::string("/d/m.gguf")));
  EXPECT_EQ(describe_llm_spec("builtin:/x.gguf", "/d/m.gguf").second, "/x.gguf");
  EXPECT_EQ(describe_llm_spec("mock", "/d/m.gguf").first, "mock");
  EXPECT_EQ(describe_llm_spec("openai:http://h/v1", "").first, "openai (http://h/v1)");
}

}  // namespace
}  // namespace chatrec::eval
