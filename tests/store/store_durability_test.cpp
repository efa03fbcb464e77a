// An acknowledged write survives kill -9: a child process writes batches and reports each one after
// the call returns; the parent kills it mid-stream and checks that every reported batch is in the
// database, whole, and that the file passes SQLite's integrity check.
#include <SQLiteCpp/SQLiteCpp.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <map>
#include <set>

#include "store/store.h"
#include "testing/test_env.h"

namespace chatrec::store {
namespace {

constexpr int kBatchSize = 3;
constexpr int kMaxBatches = 100000;  // far more than the child gets to write before it is killed
constexpr int kAcksBeforeKill = 40;

[[noreturn]] void write_until_killed(const std::string& path, int ack_fd) {
  try {
    auto store = open_store("sqlite:" + path);
    for (int batch = 0; batch < kMaxBatches; ++batch) {
      std::vector<StoredInteraction> rows;
      for (int k = 0; k < kBatchSize; ++k) {
        rows.push_back({"writer", std::to_string(batch) + "/" + std::to_string(k), "movies", 4.0f,
                        "rating", batch});
      }
      store->add_interactions(rows);
      if (write(ack_fd, &batch, sizeof batch) != sizeof batch) _exit(3);
    }
  } catch (...) {
    _exit(2);
  }
  _exit(0);
}

TEST(SqliteDurability, AcknowledgedBatchesSurviveKill9) {
  chatrec::testing::TempDir dir;
  const auto path = (dir.path() / "durable.db").string();
  open_store("sqlite:" + path);  // schema exists before the child starts

  int fds[2];
  ASSERT_EQ(pipe(fds), 0);
  const pid_t child = fork();
  ASSERT_GE(child, 0);
  if (child == 0) {
    close(fds[0]);
    write_until_killed(path, fds[1]);
  }
  close(fds[1]);

  std::set<int> acknowledged;
  int batch = 0;
  while (acknowledged.size() < static_cast<std::size_t>(kAcksBeforeKill) &&
         read(fds[0], &batch, sizeof batch) == sizeof batch) {
    acknowledged.insert(batch);
  }
  ASSERT_EQ(kill(child, SIGKILL), 0);
  // Acks already in the pipe were acknowledged before the kill: they count too.
  while (read(fds[0], &batch, sizeof batch) == sizeof batch) acknowledged.insert(batch);
  close(fds[0]);
  int status = 0;
  ASSERT_EQ(waitpid(child, &status, 0), child);
  ASSERT_TRUE(WIFSIGNALED(status))
      << "the child stopped by itself (exit " << WEXITSTATUS(status) << ") before it was killed";
  ASSERT_GE(acknowledged.size(), static_cast<std::size_t>(kAcksBeforeKill));

  {
    SQLite::Database raw(path, SQLite::OPEN_READWRITE);
    EXPECT_EQ(raw.execAndGet("PRAGMA integrity_check").getString(), "ok");
  }
  auto store = open_store("sqlite:" + path);
  std::map<std::int64_t, int> rows_per_batch;
  for (const auto& row : store->interactions_of("writer")) ++rows_per_batch[row.timestamp];
  for (int acked : acknowledged) {
    EXPECT_EQ(rows_per_batch[acked], kBatchSize)
        << "acknowledged batch " << acked << " is missing or partial";
  }
  // A batch in flight at the kill is either fully there or absent.
  for (const auto& [ts, count] : rows_per_batch) EXPECT_EQ(count, kBatchSize) << "batch " << ts;
  // Writing continues normally after the crash.
  store->add_interactions({{"writer", "after", "movies", std::nullopt, "view", -1}});
  EXPECT_EQ(store->interactions_of("writer").front().item_id, "after");
}

}  // namespace
}  // namespace chatrec::store
