#pragma once
// Runs an OpenAIServer (or any httplib server) on a loopback port for the duration of a test.
#include <httplib.h>

#include <memory>
#include <string>
#include <thread>

#include "llm/openai/openai_server.h"

namespace chatrec::llm::openai::testing {

class ServerThread {
 public:
  ServerThread(std::shared_ptr<LanguageModel> model, OpenAIServerOptions options = {})
      : server_(std::move(model), "mock-model", options) {
    start();
  }
  ServerThread(std::vector<ServedModel> models, OpenAIServerOptions options = {})
      : server_(std::move(models), options) {
    start();
  }
  ~ServerThread() {
    server_.stop();
    thread_.join();
  }
  int port() const { return port_; }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_); }

 private:
  void start() {
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
  }
  OpenAIServer server_;
  int port_ = 0;
  std::thread thread_;
};

// A plain httplib server whose handlers the test defines (for misbehaving upstreams).
class FakeServer {
 public:
  httplib::Server& server() { return server_; }
  void start() {
    port_ = server_.bind_to_any_port("127.0.0.1");
    thread_ = std::thread([this] { server_.listen_after_bind(); });
    while (!server_.is_running()) std::this_thread::yield();
  }
  ~FakeServer() {
    if (thread_.joinable()) {
      server_.stop();
      thread_.join();
    }
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(port_) + "/v1"; }

 private:
  httplib::Server server_;
  int port_ = 0;
  std::thread thread_;
};

}  // namespace chatrec::llm::openai::testing
