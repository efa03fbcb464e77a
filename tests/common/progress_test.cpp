#include "common/progress.h"

#include <gtest/gtest.h>

#include <cstdlib>
#include <sstream>
#include <string>
#include <vector>

namespace chatrec {
namespace {

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) out.push_back(line);
  return out;
}

TEST(Progress, LogsGetAPlainLineEveryTenthAndASummary) {
  ::setenv("CHATREC_PROGRESS", "0", 1);  // as when stderr is a file
  Progress::log_interval() = std::chrono::milliseconds(0);
  ::testing::internal::CaptureStderr();
  {
    Progress p("scoring", 100, "users");
    for (int i = 0; i < 100; ++i) p.advance();
  }
  const auto lines = lines_of(::testing::internal::GetCapturedStderr());
  ::unsetenv("CHATREC_PROGRESS");
  ASSERT_EQ(lines.size(), 10u);  // 10% .. 90%, then the summary
  EXPECT_EQ(lines[0].rfind("scoring: 10/100 users, ", 0), 0u) << lines[0];
  EXPECT_NE(lines[0].find(" users/s, elapsed "), std::string::npos) << lines[0];
  EXPECT_NE(lines[0].find(", eta "), std::string::npos) << lines[0];
  EXPECT_EQ(lines[8].rfind("scoring: 90/100 users, ", 0), 0u) << lines[8];
  EXPECT_EQ(lines[9].rfind("scoring: 100 users in ", 0), 0u) << lines[9];
  for (const auto& l : lines) EXPECT_EQ(l.find('\r'), std::string::npos);
}

TEST(Progress, SmallTotalsReportEachStep) {
  ::setenv("CHATREC_PROGRESS", "0", 1);
  Progress::log_interval() = std::chrono::milliseconds(0);
  ::testing::internal::CaptureStderr();
  {
    Progress p("fold", 3, "folds");
    p.advance();
    p.advance();
    p.advance();
  }
  const auto lines = lines_of(::testing::internal::GetCapturedStderr());
  ::unsetenv("CHATREC_PROGRESS");
  ASSERT_EQ(lines.size(), 3u);
  EXPECT_EQ(lines[0].rfind("fold: 1/3 folds, ", 0), 0u) << lines[0];
  EXPECT_EQ(lines[1].rfind("fold: 2/3 folds, ", 0), 0u) << lines[1];
  EXPECT_EQ(lines[2].rfind("fold: 3 folds in ", 0), 0u) << lines[2];
}

TEST(Progress, QuickLoopsOnlyPrintTheSummary) {
  ::setenv("CHATREC_PROGRESS", "0", 1);
  Progress::log_interval() = std::chrono::milliseconds(60000);
  ::testing::internal::CaptureStderr();
  {
    Progress p("fast", 1000, "items");
    for (int i = 0; i < 1000; ++i) p.advance();
  }
  const auto lines = lines_of(::testing::internal::GetCapturedStderr());
  ::unsetenv("CHATREC_PROGRESS");
  Progress::log_interval() = std::chrono::milliseconds(1000);
  ASSERT_EQ(lines.size(), 1u);
  EXPECT_EQ(lines[0].rfind("fast: 1000 items in ", 0), 0u) << lines[0];
}

}  // namespace
}  // namespace chatrec
