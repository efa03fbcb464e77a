// `chatrec bench server`: an open-loop HTTP load generator against a running `chatrec serve`, and a
// chat-turn timer (first streamed token, whole turn). Open loop: request i is due at start + i/rate
// whatever happened to the earlier ones, and its latency counts from that due time, so a slow
// server cannot hide queueing delay.
#include <fmt/format.h>
#include <httplib.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <iostream>
#include <memory>
#include <mutex>
#include <regex>
#include <string>
#include <thread>
#include <vector>

#include <nlohmann/json.hpp>

#include "cli/command.h"
#include "common/error.h"

namespace chatrec::cli {
namespace {

using Clock = std::chrono::steady_clock;

struct BenchServerArgs {
  std::string url = "http://127.0.0.1:8080";
  double rate = 200;
  double duration = 10;
  std::string path = "/api/users/1/recommendations?k=10";
  int connections = 8;
  int chat_turns = 0;
  std::string user = "1";
  std::string api_key;
};

double percentile(std::vector<double> v, double p) {
  if (v.empty()) return 0.0;
  std::sort(v.begin(), v.end());
  std::size_t idx =
      static_cast<std::size_t>(std::min<double>(v.size() - 1, p / 100.0 * (v.size() - 1) + 0.5));
  return v[idx];
}

std::pair<std::string, int> parse_url(const std::string& url) {
  std::smatch m;
  static const std::regex re(R"(^http://([^:/]+)(?::([0-9]+))?/?$)");
  if (!std::regex_match(url, m, re))
    throw InputError("--url", 0, url, "expected http://HOST[:PORT]");
  return {m[1], m[2].matched ? std::stoi(m[2]) : 80};
}

httplib::Headers auth_headers(const BenchServerArgs& a) {
  httplib::Headers h;
  if (!a.api_key.empty()) h.emplace("Authorization", "Bearer " + a.api_key);
  return h;
}

void run_load(const BenchServerArgs& a) {
  auto [host, port] = parse_url(a.url);
  const auto total = static_cast<std::size_t>(a.rate * a.duration);
  if (total == 0) throw InputError("--rate", 0, "rate*duration", "must be at least 1 request");
  std::vector<double> latency_ms(total, -1.0), service_ms(total, -1.0);
  std::vector<int> status(total, 0);
  std::atomic<std::size_t> next{0};
  const auto start = Clock::now() + std::chrono::milliseconds(100);
  const auto interval = std::chrono::duration<double>(1.0 / a.rate);
  std::vector<std::thread> workers;
  for (int w = 0; w < a.connections; ++w) {
    workers.emplace_back([&, host = host, port = port] {
      httplib::Client client(host, port);
      client.set_keep_alive(true);
      client.set_tcp_nodelay(true);
      client.set_read_timeout(30, 0);
      client.set_connection_timeout(5, 0);
      httplib::Headers headers = auth_headers(a);
      for (std::size_t i; (i = next.fetch_add(1)) < total;) {
        auto due =
            start + std::chrono::duration_cast<Clock::duration>(interval * static_cast<double>(i));
        std::this_thread::sleep_until(due);
        auto sent = Clock::now();
        auto res = client.Get(a.path.c_str(), headers);
        auto done = Clock::now();
        latency_ms[i] = std::chrono::duration<double, std::milli>(done - due).count();
        service_ms[i] = std::chrono::duration<double, std::milli>(done - sent).count();
        status[i] = res ? res->status : -1;
      }
    });
  }
  for (auto& t : workers) t.join();
  const double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  std::size_t errors = 0, transport = 0;
  for (int s : status) {
    if (s < 0)
      ++transport;
    else if (s >= 400)
      ++errors;
  }
  std::cout << fmt::format("GET {}{} open loop at {:.0f} req/s for {:.1f} s over {} connections\n",
                           a.url, a.path, a.rate, a.duration, a.connections);
  std::cout << fmt::format(
      "requests {}  achieved {:.1f} req/s  errors {} (HTTP >= 400: {}, transport: {})\n", total,
      total / elapsed, errors + transport, errors, transport);
  std::cout << fmt::format(
      "latency ms (from due time): p50 {:.2f}  p90 {:.2f}  p99 {:.2f}  max {:.2f}\n",
      percentile(latency_ms, 50), percentile(latency_ms, 90), percentile(latency_ms, 99),
      percentile(latency_ms, 100));
  std::cout << fmt::format(
      "service ms (from send):     p50 {:.2f}  p90 {:.2f}  p99 {:.2f}  max {:.2f}\n",
      percentile(service_ms, 50), percentile(service_ms, 90), percentile(service_ms, 99),
      percentile(service_ms, 100));
}

void run_chat(const BenchServerArgs& a) {
  auto [host, port] = parse_url(a.url);
  httplib::Client client(host, port);
  client.set_read_timeout(600, 0);
  httplib::Headers headers = auth_headers(a);
  auto created = client.Post("/api/conversations", headers,
                             nlohmann::json{{"user_id", a.user}}.dump(), "application/json");
  if (!created || created->status != 201) {
    throw std::runtime_error(
        "cannot create a conversation: " +
        (created ? std::to_string(created->status) + " " + created->body : "no response"));
  }
  const std::string id = nlohmann::json::parse(created->body)["id"];
  const std::vector<std::string> prompts = {
      "Recommend me a good comedy movie", "Something more recent please",
      "I'd like a thriller with a twist", "Any sci-fi classics?",
      "What about a romantic film for tonight?"};
  std::vector<double> first_ms, total_ms;
  int errors = 0, degraded = 0;
  for (int t = 0; t < a.chat_turns; ++t) {
    httplib::Request req;
    req.method = "POST";
    req.path = "/api/conversations/" + id + "/messages";
    req.headers = headers;
    req.set_header("Accept", "text/event-stream");
    req.set_header("Content-Type", "application/json");
    req.body = nlohmann::json{{"text", prompts[t % prompts.size()]}}.dump();
    std::string body;
    const auto start = Clock::now();
    double first = -1;
    req.content_receiver = [&](const char* data, std::size_t n, std::uint64_t, std::uint64_t) {
      body.append(data, n);
      if (first < 0 && body.find("event: token") != std::string::npos) {
        first = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
      }
      return true;
    };
    httplib::Response res;
    httplib::Error error = httplib::Error::Success;
    const bool ok = client.send(req, res, error) && res.status == 200 &&
                    body.find("event: done") != std::string::npos;
    const double total = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
    if (!ok) {
      ++errors;
      continue;
    }
    if (body.find("\"degraded\":true") != std::string::npos) ++degraded;
    total_ms.push_back(total);
    if (first >= 0) first_ms.push_back(first);
    std::cout << fmt::format("turn {}: first token {:.0f} ms, total {:.0f} ms\n", t + 1, first,
                             total)
              << std::flush;
  }
  std::cout << fmt::format("chat turns {}  errors {}  degraded {}\n", a.chat_turns, errors,
                           degraded);
  std::cout << fmt::format("first token ms: p50 {:.0f}  p90 {:.0f}  max {:.0f}\n",
                           percentile(first_ms, 50), percentile(first_ms, 90),
                           percentile(first_ms, 100));
  std::cout << fmt::format("turn ms:        p50 {:.0f}  p90 {:.0f}  max {:.0f}\n",
                           percentile(total_ms, 50), percentile(total_ms, 90),
                           percentile(total_ms, 100));
}

const Registration bench_server_registration(95, [](CLI::App& root) {
  auto args = std::make_shared<BenchServerArgs>();
  auto& bench = group(root, "bench", "Benchmarks");
  auto* cmd = bench.add_subcommand(
      "server", "Open-loop load on a running `chatrec serve` (or time chat turns)");
  cmd->add_option("--url", args->url, "Server base URL")->capture_default_str();
  cmd->add_option("--rate", args->rate, "Requests per second")
      ->capture_default_str()
      ->check(CLI::Range(0.1, 100000.0));
  cmd->add_option("--duration", args->duration, "Seconds")
      ->capture_default_str()
      ->check(CLI::Range(0.1, 3600.0));
  cmd->add_option("--path", args->path, "GET path under load")->capture_default_str();
  cmd->add_option("--connections", args->connections,
                  "Client threads, one keep-alive connection each")
      ->capture_default_str()
      ->check(CLI::Range(1, 1024));
  cmd->add_option("--chat-turns", args->chat_turns, "Instead of load: time N streamed chat turns")
      ->check(CLI::Range(0, 10000));
  cmd->add_option("--user", args->user, "User of the chat conversation")->capture_default_str();
  cmd->add_option("--api-key", args->api_key, "Sent as Authorization: Bearer KEY");
  cmd->callback([args] {
    if (args->chat_turns > 0)
      run_chat(*args);
    else
      run_load(*args);
  });
});

}  // namespace
}  // namespace chatrec::cli
