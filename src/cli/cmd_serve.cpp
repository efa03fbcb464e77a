// `chatrec serve`: the HTTP API and web chat page (src/server) over the Chat-Rec engine and a
// store.
#include <fmt/format.h>
#include <signal.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <memory>
#include <string>
#include <thread>

#include "chat/domains.h"
#include "chat/engine.h"
#include "cli/command.h"
#include "cli/llm_args.h"
#include "common/blas.h"
#include "common/error.h"
#include "server/bootstrap.h"
#include "server/server.h"
#include "store/store.h"

namespace chatrec::cli {
namespace {

struct ServeArgs {
  std::string data_dir;
  std::string store;
  std::string llm = "builtin";
  llm::OpenOptions open;
  std::string model_file;
  std::string host = "127.0.0.1";
  int port = 8080;
  std::string api_keys_file;
  bool insecure = false;
  std::string rate_limit;
  std::size_t max_body = 256 * 1024;
  int threads = 16;
  std::vector<std::string> domains;
  std::string movies_model = "ease";
  std::string games_model = "itemknn";
  std::string user_links;
  std::string rerank = "score";
  int max_reply_tokens = 96;
  double llm_timeout = 60.0;
};

int stop_pipe[2] = {-1, -1};

void on_stop_signal(int sig) {
  const char c = static_cast<char>(sig);
  [[maybe_unused]] auto n = write(stop_pipe[1], &c, 1);
}

void run_serve(ServeArgs a) {
  namespace fs = std::filesystem;
  server::ServerConfig config;
  config.host = a.host;
  config.port = a.port;
  config.max_body_bytes = a.max_body;
  config.threads = a.threads;
  if (!a.api_keys_file.empty()) config.api_keys = server::load_api_keys_file(a.api_keys_file);
  if (const char* env = std::getenv("CHATREC_API_KEYS"); env && *env) {
    for (const auto& [key, grant] : server::parse_api_keys(env)) config.api_keys[key] = grant;
  }
  // Without keys every request is answered, which is only safe when nobody else can connect.
  if (config.api_keys.empty() && !server::is_loopback_host(a.host) && !a.insecure)
    throw InputError("--host", 0, a.host,
                     "serving a non-loopback address without API keys would let anyone read "
                     "every user's data; give --api-keys FILE (or $CHATREC_API_KEYS), or "
                     "--insecure to do it anyway");
  if (!a.rate_limit.empty()) config.rate_limit_per_second = server::parse_rate_limit(a.rate_limit);

  const std::vector<std::string> domains =
      a.domains.empty() ? chat::present_domains(a.data_dir) : a.domains;
  chat::require_present(domains, a.data_dir);
  config.domains = domains;

  std::string store_url = a.store;
  if (store_url.empty()) {
    const char* home = std::getenv("HOME");
    fs::path dir = fs::path(home ? home : ".") / ".local/share/chatrec";
    fs::create_directories(dir);
    store_url = "sqlite:" + (dir / "chatrec.db").string();
  }
  std::shared_ptr<store::Store> st = store::open_store(store_url);
  for (const auto& s : server::import_shared_datasets(*st, a.data_dir)) {
    if (std::find(domains.begin(), domains.end(), s.domain) == domains.end()) continue;
    if (s.already_present)
      spdlog::info("store: {} already imported", s.domain);
    else
      spdlog::info("store: imported {}: {} users, {} items, {} interactions", s.domain, s.users,
                   s.items, s.interactions);
  }

  chat::EngineConfig engine_config;
  engine_config.data_dir = a.data_dir;
  engine_config.domains = domains;
  engine_config.models = {{"movies", a.movies_model}, {"games", a.games_model}};
  // A model file trained by `chatrec train --dataset ml-100k` (on all of it) serves movies.
  if (!a.model_file.empty()) engine_config.model_files["movies"] = a.model_file;
  engine_config.user_links = a.user_links;
  engine_config.llm = a.llm;
  engine_config.llm_open = a.open;
  engine_config.opened_store = st;
  engine_config.log = [](const std::string& line) { spdlog::info("{}", line); };
  // The vector index searches batches through BLAS; which kernels run is worth a line.
  spdlog::info("{}", common::blas_info().describe());
  if (!chat::parse_rerank_mode(a.rerank, &engine_config.options.rerank)) {
    throw InputError("--rerank", 0, a.rerank, "expected none, generate or score");
  }
  engine_config.options.max_reply_tokens = a.max_reply_tokens;
  engine_config.options.llm_timeout_seconds = a.llm_timeout;
  std::shared_ptr<chat::ChatEngine> engine = chat::ChatEngine::open(engine_config);

  server::Server http(config, engine, st);
  int port = http.bind();
  // SIGINT/SIGTERM stop the server cleanly. A handler (not sigwait) because libraries such as
  // OpenBLAS start threads before main that would not have the signals blocked; it only writes to a
  // pipe.
  if (pipe(stop_pipe) != 0) throw std::runtime_error("pipe() failed");
  struct sigaction action {};
  action.sa_handler = on_stop_signal;
  sigemptyset(&action.sa_mask);
  sigaction(SIGINT, &action, nullptr);
  sigaction(SIGTERM, &action, nullptr);
  std::thread waiter([&http] {
    char sig = 0;
    while (read(stop_pipe[0], &sig, 1) < 0 && errno == EINTR) {
    }
    if (sig != 0) spdlog::info("signal {}: stopping", static_cast<int>(sig));
    http.stop();
  });
  std::cout
      << fmt::format(
             "chatrec serving http://{}:{}/ (LLM: {}, store: {}, domains: {}, API keys: {})\n",
             a.host, port, engine->llm_name(), store_url.substr(0, store_url.find('@')),
             fmt::join(domains, ","), config.api_keys.size())
      << std::flush;
  http.listen();
  // listen() returned by stop() from the waiter, or by a failure: wake the waiter in the latter
  // case.
  const char none = 0;
  if (write(stop_pipe[1], &none, 1) < 0) spdlog::warn("cannot wake the signal thread");
  waiter.join();
}

const Registration serve_registration(80, [](CLI::App& root) {
  auto args = std::make_shared<ServeArgs>();
  auto* cmd = root.add_subcommand("serve", "Serve the HTTP API and the web chat page");
  args->data_dir = default_data_dir();
  cmd->add_option("--data-dir", args->data_dir, "Directory holding ml-100k/ and amazon-games/")
      ->capture_default_str();
  cmd->add_option(
      "--store", args->store,
      "sqlite:PATH or postgresql://... (default sqlite:~/.local/share/chatrec/chatrec.db)");
  cmd->add_option("--llm", args->llm, "builtin | builtin:FILE.gguf | openai:URL | mock | none")
      ->capture_default_str();
  add_lora_options(cmd, args->open);
  cmd->add_option("--model-file", args->model_file,
                  "Recommender for movies trained by `chatrec train --dataset ml-100k` (default: "
                  "train at start)")
      ->check(CLI::ExistingFile);
  cmd->add_option("--host", args->host, "Address to listen on")->capture_default_str();
  cmd->add_option("--port", args->port, "Port (0 = any free port)")
      ->capture_default_str()
      ->check(CLI::Range(0, 65535));
  cmd->add_option("--api-keys", args->api_keys_file,
                  "File of 'KEY admin' / 'KEY user USER_ID' lines; every /api request then needs "
                  "a key, and a user key reaches its own user only (also "
                  "$CHATREC_API_KEYS=KEY:admin,KEY:user:ID,...)")
      ->check(CLI::ExistingFile);
  cmd->add_flag("--insecure", args->insecure,
                "Serve a non-loopback --host without API keys (anyone can then read any user)");
  cmd->add_option("--rate-limit", args->rate_limit, "Per key (or address) token bucket, e.g. 20/s");
  cmd->add_option("--max-body", args->max_body, "Largest request body in bytes")
      ->capture_default_str()
      ->check(CLI::Range(1024, 64 * 1024 * 1024));
  cmd->add_option("--threads", args->threads, "Connections served at once")
      ->capture_default_str()
      ->check(CLI::Range(2, 1024));
  cmd->add_option("--domains", args->domains, "Catalogues (movies, games); default: those present");
  cmd->add_option("--movies-model", args->movies_model, "Movies recommender when no --model-file")
      ->capture_default_str();
  cmd->add_option("--games-model", args->games_model, "Games recommender")->capture_default_str();
  cmd->add_option("--link-users", args->user_links,
                  "File of 'DOMAIN DATASET_USER_ID USER_ID' lines: deployment users who are users "
                  "of an anonymous dataset (Amazon Games); others see no history there")
      ->check(CLI::ExistingFile);
  cmd->add_option("--rerank", args->rerank, "LLM reranking: none | generate | score")
      ->capture_default_str();
  cmd->add_option("--max-reply-tokens", args->max_reply_tokens, "Longest free-text LLM answer")
      ->capture_default_str()
      ->check(CLI::Range(8, 2048));
  cmd->add_option("--llm-timeout", args->llm_timeout,
                  "Seconds per LLM call before the classic fallback")
      ->capture_default_str();
  cmd->callback([args] { run_serve(*args); });
});

}  // namespace
}  // namespace chatrec::cli
