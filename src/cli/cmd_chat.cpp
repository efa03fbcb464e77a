// `chatrec chat`: a terminal conversation with the Chat-Rec engine (streamed replies,
// recommendation cards).
#include <fmt/format.h>

#include <iostream>
#include <memory>
#include <string>

#include "chat/catalog.h"
#include "chat/domains.h"
#include "chat/engine.h"
#include "cli/command.h"
#include "cli/llm_args.h"
#include "common/error.h"
#include "common/text.h"

namespace chatrec::cli {
namespace {

struct ChatArgs {
  std::string user;
  std::string llm = "builtin";
  llm::OpenOptions open;
  std::string store;
  std::string data_dir;
  std::string conversation;
  std::string rerank = "score";
  bool no_hint = false;
  double fusion_weight = 1.0;
  std::vector<std::string> domains;  // empty: those present
  std::string user_links;
};

void print_cards(const chat::TurnResult& r) {
  for (std::size_t i = 0; i < r.recommendations.size(); ++i) {
    const auto& x = r.recommendations[i];
    std::cout << fmt::format("  [{}] {} · {}{} · {} · {}\n", i + 1, x.title, x.domain,
                             x.categories.empty() ? "" : " · " + text::join(x.categories, "/"),
                             chat::to_string(x.source), x.reason);
  }
  std::cout << fmt::format(
      "  (intent {} by {}; {} LLM calls, {} tokens in / {} out, {:.0f} ms{})\n",
      chat::to_string(r.intent), r.intent_decided_by, r.stats.llm_calls, r.stats.tokens_in,
      r.stats.tokens_out, r.stats.latency_ms, r.degraded ? "; DEGRADED" : "");
  for (const auto& n : r.notes) std::cout << "  note: " << n << "\n";
}

void run_chat(const ChatArgs& a) {
  chat::EngineConfig config;
  config.data_dir = a.data_dir;
  config.llm = a.llm;
  config.llm_open = a.open;
  config.store = a.store;
  config.domains = a.domains.empty() ? chat::present_domains(a.data_dir) : a.domains;
  chat::require_present(config.domains, a.data_dir);
  config.log = [](const std::string& line) { std::cerr << line << "\n"; };
  config.user_links = a.user_links;
  if (!chat::parse_rerank_mode(a.rerank, &config.options.rerank)) {
    throw InputError("--rerank", 0, a.rerank, "expected none, generate or score");
  }
  config.options.hint_top1 = !a.no_hint;
  config.options.fusion_weight = a.fusion_weight;
  std::cerr << "loading catalogues and models...\n";
  auto engine = chat::ChatEngine::open(config);
  std::string id = a.conversation.empty() ? engine->create_conversation(a.user) : a.conversation;
  std::cout << fmt::format(
      "conversation {} with user {} (LLM: {}). Type /quit to leave, /new for a new conversation.\n",
      id, a.user, engine->llm_name());
  std::string line;
  while (true) {
    std::cout << "\nyou> " << std::flush;
    if (!std::getline(std::cin, line)) break;
    const std::string t(text::trim(line));
    if (t.empty()) continue;
    if (t == "/quit" || t == "/exit") break;
    if (t == "/new") {
      id = engine->create_conversation(a.user);
      std::cout << "new conversation " << id << "\n";
      continue;
    }
    std::cout << "chatrec> " << std::flush;
    try {
      const auto r =
          engine->turn(id, t, [](std::string_view piece) { std::cout << piece << std::flush; });
      std::cout << "\n";
      print_cards(r);
    } catch (const chat::ChatError& e) {
      std::cout << "\n(error: " << e.what() << ")\n";
    }
  }
}

const Registration chat_registration(60, [](CLI::App& root) {
  auto args = std::make_shared<ChatArgs>();
  auto* cmd = root.add_subcommand("chat", "Talk to the Chat-Rec recommender in the terminal");
  cmd->add_option("--user", args->user, "User id (ml-100k ids are known users; others start cold)")
      ->required();
  cmd->add_option("--llm", args->llm,
                  "LLM backend: builtin | builtin:FILE.gguf | openai:URL | none")
      ->capture_default_str();
  add_lora_options(cmd, args->open);
  cmd->add_option("--store", args->store,
                  "Store URL (sqlite:PATH or postgresql://...); default: in memory");
  args->data_dir = default_data_dir();
  cmd->add_option("--data-dir", args->data_dir, "Directory holding ml-100k/ and amazon-games/")
      ->capture_default_str();
  cmd->add_option("--conversation", args->conversation, "Resume a stored conversation by id");
  cmd->add_option("--rerank", args->rerank, "none | generate | score")->capture_default_str();
  cmd->add_flag("--no-hint", args->no_hint, "Do not tell the LLM the recommender's top-1");
  cmd->add_option("--fusion-weight", args->fusion_weight,
                  "Weight of the LLM order against the base order (0..1)")
      ->capture_default_str();
  cmd->add_option("--link-users", args->user_links,
                  "File of 'DOMAIN DATASET_USER_ID USER_ID' lines: deployment users who are users "
                  "of an anonymous dataset (Amazon Games)")
      ->check(CLI::ExistingFile);
  cmd->add_option("--domains", args->domains,
                  "Catalogues to load (movies, games); default: those present")
      ->capture_default_str();
  cmd->callback([args] { run_chat(*args); });
});

}  // namespace
}  // namespace chatrec::cli
