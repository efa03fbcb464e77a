// `chatrec bench soak`: a bounded mixed load on loopback against a `chatrec serve` this command
// starts itself (the mock LLM, a fresh SQLite store), for minutes rather than seconds: fast-path
// recommendations, chat turns, interaction writes and conversation reads from closed-loop client
// threads. Each minute it prints the requests served, errors by kind, latency p50/p99 and the
// server's resident memory and open file descriptors (from /proc); the summary compares memory and
// descriptors at the end with their values after the warm-up minute.
#include <fmt/format.h>
#include <httplib.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <map>
#include <mutex>
#include <random>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli/bench_stats.h"
#include "cli/command.h"

namespace chatrec::cli {
namespace {

using Clock = std::chrono::steady_clock;
using nlohmann::json;

struct BenchSoakArgs {
  double minutes = 20;
  int clients = 4;
  std::string data_dir;
  double max_rss_growth = 0.05;  // the bound the summary checks, as a fraction after warm-up
  // Shares of fast path, interaction writes, chat turns and conversation reads (any scale).
  std::vector<double> mix = {50, 20, 15, 15};
};

struct ServerProcess {
  pid_t pid = -1;
  int port = 0;
  std::filesystem::path dir;
};

// Starts `chatrec serve` on a free loopback port and reads the port from its first stdout line.
ServerProcess start_server(const BenchSoakArgs& a) {
  ServerProcess s;
  s.dir = std::filesystem::temp_directory_path() / fmt::format("chatrec-soak-{}", getpid());
  std::filesystem::create_directories(s.dir);
  int out[2];
  if (pipe(out) != 0) throw std::runtime_error("bench soak: pipe failed");
  s.pid = fork();
  if (s.pid < 0) throw std::runtime_error("bench soak: fork failed");
  if (s.pid == 0) {
    dup2(out[1], STDOUT_FILENO);
    close(out[0]);
    close(out[1]);
    const std::string store = "sqlite:" + (s.dir / "soak.db").string();
    const std::string log = (s.dir / "server.log").string();
    if (FILE* f = std::freopen(log.c_str(), "w", stderr); !f) _exit(126);
    std::vector<std::string> args = {
        "chatrec",   "serve",  "--llm",      "mock",     "--port",   "0",     "--store",   store,
        "--domains", "movies", "--data-dir", a.data_dir, "--rerank", "score", "--threads", "32"};
    std::vector<char*> argv;
    for (std::string& x : args) argv.push_back(x.data());
    argv.push_back(nullptr);
    execv("/proc/self/exe", argv.data());
    _exit(127);
  }
  close(out[1]);
  // The server says where it listens once its models are fitted.
  std::string line;
  for (char c; line.find("chatrec serving") == std::string::npos;) {
    line.clear();
    bool got = false;
    while ((got = read(out[0], &c, 1) == 1) && c != '\n') line += c;
    if (!got) break;
  }
  // The rest of its stdout is drained so the server never blocks on a full pipe.
  std::thread([fd = out[0]] {
    char buf[4096];
    while (read(fd, buf, sizeof buf) > 0) {
    }
    close(fd);
  }).detach();
  const auto p = line.find("http://127.0.0.1:");
  if (p == std::string::npos)
    throw std::runtime_error("bench soak: the server did not start (see " +
                             (s.dir / "server.log").string() + "): " + line);
  s.port = std::stoi(line.substr(p + 17));
  return s;
}

long rss_kib(pid_t pid) {
  std::ifstream in(fmt::format("/proc/{}/status", pid));
  std::string key;
  long value = 0;
  while (in >> key) {
    if (key == "VmRSS:") {
      in >> value;
      return value;
    }
    in.ignore(1 << 16, '\n');
  }
  return 0;
}

long open_fds(pid_t pid) {
  long n = 0;
  std::error_code ec;
  for (auto it = std::filesystem::directory_iterator(fmt::format("/proc/{}/fd", pid), ec);
       !ec && it != std::filesystem::directory_iterator(); it.increment(ec))
    ++n;
  return n;
}

struct Window {
  std::map<std::string, long> served;  // per operation
  std::map<std::string, long> errors;  // "op status"
  std::vector<double> latency_ms;
};

void run_bench(const BenchSoakArgs& a) {
  ServerProcess server = start_server(a);
  std::cout << fmt::format(
      "soak: chatrec serve (pid {}, mock LLM, SQLite) on 127.0.0.1:{}; {} clients for {:.1f} min\n",
      server.pid, server.port, a.clients, a.minutes);
  std::mutex mutex;
  Window window;
  std::atomic<bool> stop{false};
  std::vector<std::thread> clients;
  for (int t = 0; t < a.clients; ++t) {
    clients.emplace_back([&, t] {
      httplib::Client http("127.0.0.1", server.port);
      http.set_read_timeout(60, 0);
      http.set_keep_alive(true);
      std::mt19937_64 rng(2023 + static_cast<std::uint64_t>(t));
      // Users drawn at random from the catalogue's 943, as a deployment's traffic spreads: a few
      // users taking every write would grow their histories without bound, which no real log does.
      std::string user = std::to_string(1 + rng() % 943);
      std::string conversation;
      long step = 0;
      std::discrete_distribution<int> kind(a.mix.begin(), a.mix.end());
      while (!stop.load()) {
        const int pick = kind(rng);
        std::string op;
        const auto t0 = Clock::now();
        httplib::Result r{nullptr, httplib::Error::Unknown};
        const std::string someone = std::to_string(1 + rng() % 943);
        if (pick == 0) {
          op = "fast path";
          r = http.Get(fmt::format("/api/users/{}/recommendations?k=10", someone).c_str());
        } else if (pick == 1) {
          op = "interaction";
          const json body = {
              {"interactions", json::array({{{"user_id", someone},
                                             {"domain", "movies"},
                                             {"item_id", std::to_string(1 + rng() % 1682)},
                                             {"rating", 1 + static_cast<int>(rng() % 5)}}})}};
          r = http.Post("/api/interactions", body.dump(), "application/json");
        } else if (pick == 2 || conversation.empty()) {
          op = "chat turn";
          if (conversation.empty() || step % 20 == 0) {
            user = std::to_string(1 + rng() % 943);
            auto created =
                http.Post("/api/conversations", json{{"user_id", user}}.dump(), "application/json");
            if (created && (created->status == 200 || created->status == 201))
              conversation = json::parse(created->body, nullptr, false).value("id", "");
          }
          if (!conversation.empty()) {
            static const char* requests[] = {"recommend me a comedy", "something like Star Wars",
                                             "any good thrillers from the 90s?",
                                             "I did not like the first one, more please"};
            r = http.Post(("/api/conversations/" + conversation + "/messages").c_str(),
                          json{{"text", requests[rng() % 4]}}.dump(), "application/json");
          }
        } else {
          op = "conversation read";
          r = http.Get(("/api/conversations/" + conversation).c_str());
        }
        const double ms = std::chrono::duration<double, std::milli>(Clock::now() - t0).count();
        ++step;
        std::lock_guard lock(mutex);
        if (r && r->status < 400) {
          window.served[op] += 1;
          window.latency_ms.push_back(ms);
        } else {
          window
              .errors[op + " " + (r ? std::to_string(r->status) : httplib::to_string(r.error()))] +=
              1;
        }
      }
    });
  }
  const auto start = Clock::now();
  const int windows = std::max(1, static_cast<int>(std::lround(a.minutes)));
  const double window_seconds = a.minutes * 60.0 / windows;
  long warm_rss = 0, warm_fds = 0, total = 0, failed = 0;
  std::map<std::string, long> errors_total;
  std::cout << "| minute | served | errors | p50 ms | p99 ms | server RSS MiB | open fds |\n"
               "|---|---|---|---|---|---|---|\n";
  for (int w = 1; w <= windows; ++w) {
    std::this_thread::sleep_until(start + std::chrono::duration<double>(w * window_seconds));
    Window done;
    {
      std::lock_guard lock(mutex);
      std::swap(done, window);
    }
    long served = 0, errs = 0;
    for (const auto& [_, n] : done.served) served += n;
    for (const auto& [k, n] : done.errors) {
      errs += n;
      errors_total[k] += n;
    }
    total += served;
    failed += errs;
    const long rss = rss_kib(server.pid), fds = open_fds(server.pid);
    if (w == 1) {
      warm_rss = rss;
      warm_fds = fds;
    }
    std::cout << fmt::format("| {:.1f} | {} | {} | {:.1f} | {:.1f} | {:.1f} | {} |\n",
                             w * window_seconds / 60.0, served, errs,
                             percentile(done.latency_ms, 0.5), percentile(done.latency_ms, 0.99),
                             static_cast<double>(rss) / 1024.0, fds)
              << std::flush;
  }
  stop = true;
  for (auto& c : clients) c.join();
  const long end_rss = rss_kib(server.pid), end_fds = open_fds(server.pid);
  kill(server.pid, SIGTERM);
  int status = 0;
  waitpid(server.pid, &status, 0);
  const double growth =
      warm_rss > 0 ? static_cast<double>(end_rss - warm_rss) / static_cast<double>(warm_rss) : 0.0;
  std::cout << fmt::format(
      "\nsummary: {} requests served, {} errors in {:.1f} min; server RSS after warm-up {:.1f} "
      "MiB, "
      "at the end {:.1f} MiB ({:+.1f} %, bound {:.0f} %: {}); open fds {} -> {}; server exit {}\n",
      total, failed, a.minutes, static_cast<double>(warm_rss) / 1024.0,
      static_cast<double>(end_rss) / 1024.0, 100.0 * growth, 100.0 * a.max_rss_growth,
      growth <= a.max_rss_growth ? "within" : "EXCEEDED", warm_fds, end_fds,
      WIFEXITED(status) ? std::to_string(WEXITSTATUS(status)) : "signal");
  for (const auto& [k, n] : errors_total) std::cout << fmt::format("  errors: {} x{}\n", k, n);
  std::filesystem::remove_all(server.dir);
}

static Registration bench_soak_registration(97, [](CLI::App& root) {
  CLI::App& bench = group(root, "bench", "Benchmarks");
  auto args = std::make_shared<BenchSoakArgs>();
  args->data_dir = default_data_dir();
  auto* cmd = bench.add_subcommand(
      "soak", "A mixed load for minutes on a server this command starts: errors, memory, fds");
  cmd->add_option("--minutes", args->minutes, "How long")->capture_default_str();
  cmd->add_option("--clients", args->clients, "Closed-loop client threads")->capture_default_str();
  cmd->add_option("--data-dir", args->data_dir, "Directory holding ml-100k/")
      ->capture_default_str();
  cmd->add_option("--mix", args->mix,
                  "Shares of fast path, interaction writes, chat turns and conversation reads")
      ->expected(4)
      ->capture_default_str();
  cmd->add_option("--max-rss-growth", args->max_rss_growth,
                  "Bound on the server's memory growth after warm-up (fraction)")
      ->capture_default_str();
  cmd->callback([args] { run_bench(*args); });
});

}  // namespace
}  // namespace chatrec::cli
