// chatrec llm-serve: any LLM backend (normally the built-in runtime) behind the OpenAI HTTP API.
#include <pthread.h>
#include <spdlog/spdlog.h>

#include <csignal>
#include <filesystem>
#include <iostream>
#include <memory>
#include <thread>
#include <vector>

#include "cli/command.h"
#include "cli/llm_args.h"
#include "llm/factory.h"
#include "llm/language_model.h"
#include "llm/openai/openai_server.h"

namespace chatrec::cli {
namespace {

struct LlmServeArgs {
  std::string model = "builtin";
  std::string host = "127.0.0.1";
  int port = 8081;
  int threads = 0;
  std::string name;
  int max_body_mb = 8;
  llm::OpenOptions open;
};

void run_llm_serve(LlmServeArgs args) {
  std::shared_ptr<llm::LanguageModel> model = llm::open_language_model(args.model, args.open);
  llm::openai::OpenAIServerOptions options;
  options.threads = args.threads;
  options.max_body_bytes = static_cast<std::size_t>(args.max_body_mb) * 1024 * 1024;
  const std::string base_name = args.name.empty() ? model->name() : args.name;
  std::vector<llm::openai::ServedModel> served;
  if (args.open.lora.empty()) {
    served.push_back({base_name, model});
  } else {
    // With an adapter both are served: "BASE+ADAPTER" (the default) and the plain base, so a
    // client can compare them on one server.
    served.push_back(
        {base_name + "+" + std::filesystem::path(args.open.lora).stem().string(), model});
    served.push_back({base_name, llm::open_language_model(args.model)});
  }
  std::string name = served.front().name;
  for (std::size_t k = 1; k < served.size(); ++k) name += ", " + served[k].name;
  llm::openai::OpenAIServer server(std::move(served), options);

  // Ctrl-C and SIGTERM stop the server cleanly: the signals are blocked here (and so in every
  // thread started later) and a dedicated thread waits for them.
  sigset_t signals;
  sigemptyset(&signals);
  sigaddset(&signals, SIGINT);
  sigaddset(&signals, SIGTERM);
  pthread_sigmask(SIG_BLOCK, &signals, nullptr);
  std::thread waiter([&] {
    int sig = 0;
    sigwait(&signals, &sig);
    server.stop();
  });

  try {
    if (args.port == 0) {
      args.port = server.bind_to_any_port(args.host);
    } else {
      server.bind_to_port(args.host, args.port);
    }
  } catch (...) {
    pthread_kill(waiter.native_handle(), SIGTERM);
    waiter.join();
    throw;
  }
  std::cout << "chatrec llm-serve: " << name << " at http://" << args.host << ":" << args.port
            << "/v1 (OpenAI-compatible; Ctrl-C to stop)" << std::endl;
  server.listen_after_bind();
  pthread_kill(waiter.native_handle(), SIGTERM);  // no-op when a signal already ended the wait
  waiter.join();
  llm::Usage usage = model->total_usage();
  std::cout << "served " << usage.prompt_tokens << " prompt and " << usage.completion_tokens
            << " completion tokens" << std::endl;
}

const Registration registration(80, [](CLI::App& root) {
  auto args = std::make_shared<LlmServeArgs>();
  CLI::App* cmd =
      root.add_subcommand("llm-serve", "Serve an LLM over the OpenAI-compatible HTTP API");
  cmd->add_option("--model", args->model,
                  "builtin, builtin:FILE.gguf, FILE.gguf, openai:URL or mock")
      ->capture_default_str();
  cmd->add_option("--host", args->host, "Address to listen on")->capture_default_str();
  cmd->add_option("--port", args->port, "Port to listen on (0: a free one, printed)")
      ->capture_default_str()
      ->check(CLI::Range(0, 65535));
  cmd->add_option("--threads", args->threads, "HTTP worker threads (0: httplib's default)")
      ->check(CLI::Range(0, 1024));
  cmd->add_option("--name", args->name,
                  "Model id reported by /v1/models (default: the backend's name)");
  cmd->add_option("--max-body-mb", args->max_body_mb, "Largest accepted request body, MiB")
      ->capture_default_str()
      ->check(CLI::Range(1, 1024));
  add_lora_options(cmd, args->open);
  cmd->callback([args] { run_llm_serve(*args); });
});

}  // namespace
}  // namespace chatrec::cli
