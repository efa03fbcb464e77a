#include "llm/runtime/chat_template.h"

#include <utility>

#include "llm/runtime/gguf.h"
#include "llm/runtime/tokenizer.h"

namespace chatrec::llm::runtime {
namespace {

// A piece of the rendered prompt: markers are special, contents are plain text.
struct Segment {
  std::string text;
  bool special;
};

// The template's literal default system prompt: the text between "<|im_start|>system\n" and
// "<|im_end|>" in the branch taken when the first message is not a system message.
std::string extract_default_system(const std::string& tpl) {
  const auto branch = tpl.find("!= 'system'");
  if (branch == std::string::npos) return {};
  for (const std::string marker : {"<|im_start|>system\n", "<|im_start|>system\\n"}) {
    const auto start = tpl.find(marker, branch);
    if (start == std::string::npos) continue;
    const auto end = tpl.find("<|im_end|>", start);
    const auto next_block = tpl.find("{%", branch + 1);
    if (end == std::string::npos || (next_block != std::string::npos && start > next_block))
      continue;
    return tpl.substr(start + marker.size(), end - start - marker.size());
  }
  return {};
}

std::vector<Segment> segments(ChatFormat format, const std::string& default_system,
                              const std::vector<Message>& messages, bool add_generation_prompt) {
  std::vector<Segment> out;
  // A trailing assistant message with a generation prompt is a prefill: its turn stays open and the
  // model continues it (as llama.cpp's server treats a final assistant message).
  const bool prefill =
      add_generation_prompt && !messages.empty() && messages.back().role == "assistant";
  auto special = [&](std::string s) { out.push_back({std::move(s), true}); };
  auto text = [&](std::string s) { out.push_back({std::move(s), false}); };
  switch (format) {
    case ChatFormat::kChatMl:
      if (!default_system.empty() && (messages.empty() || messages.front().role != "system")) {
        special("<|im_start|>");
        text("system\n" + default_system);
        special("<|im_end|>");
        text("\n");
      }
      for (std::size_t k = 0; k < messages.size(); ++k) {
        const Message& m = messages[k];
        special("<|im_start|>");
        text(m.role + "\n" + m.content);
        if (k + 1 == messages.size() && prefill) break;
        special("<|im_end|>");
        text("\n");
      }
      if (add_generation_prompt && !prefill) {
        special("<|im_start|>");
        text("assistant\n");
      }
      break;
    case ChatFormat::kLlama3:
      special("<|begin_of_text|>");
      for (std::size_t k = 0; k < messages.size(); ++k) {
        const Message& m = messages[k];
        special("<|start_header_id|>");
        text(m.role);
        special("<|end_header_id|>");
        text("\n\n" + m.content);
        if (k + 1 == messages.size() && prefill) break;
        special("<|eot_id|>");
      }
      if (add_generation_prompt && !prefill) {
        special("<|start_header_id|>");
        text("assistant");
        special("<|end_header_id|>");
        text("\n\n");
      }
      break;
    case ChatFormat::kGemma: {
      // Gemma has no system role: the system message is prepended to the first user turn.
      special("<bos>");
      std::string pending_system;
      for (std::size_t k = 0; k < messages.size(); ++k) {
        const Message& m = messages[k];
        if (m.role == "system") {
          pending_system += m.content + "\n\n";
          continue;
        }
        special("<start_of_turn>");
        text((m.role == "assistant" ? "model" : m.role) + "\n" + std::exchange(pending_system, {}) +
             m.content);
        if (k + 1 == messages.size() && prefill) break;
        special("<end_of_turn>");
        text("\n");
      }
      if (add_generation_prompt && !prefill) {
        special("<start_of_turn>");
        text("model\n");
      }
      break;
    }
  }
  return out;
}

}  // namespace

const char* to_string(ChatFormat format) {
  switch (format) {
    case ChatFormat::kChatMl:
      return "chatml";
    case ChatFormat::kLlama3:
      return "llama3";
    case ChatFormat::kGemma:
      return "gemma";
  }
  return "?";
}

ChatTemplate ChatTemplate::detect(const GgufFile& file, const Tokenizer& tokenizer) {
  ChatTemplate t;
  const std::string tpl = file.get_string("tokenizer.chat_template", "");
  const std::string arch = file.get_string("general.architecture", "");
  if (tpl.find("<|im_start|>") != std::string::npos) {
    t.format = ChatFormat::kChatMl;
  } else if (tpl.find("<|start_header_id|>") != std::string::npos) {
    t.format = ChatFormat::kLlama3;
  } else if (tpl.find("<start_of_turn>") != std::string::npos || arch.rfind("gemma", 0) == 0) {
    t.format = ChatFormat::kGemma;
  } else if (tokenizer.find("<|start_header_id|>")) {
    t.format = ChatFormat::kLlama3;
  } else {
    t.format = ChatFormat::kChatMl;
  }
  if (t.format == ChatFormat::kChatMl) t.default_system = extract_default_system(tpl);
  return t;
}

std::vector<int> ChatTemplate::render(const Tokenizer& tokenizer,
                                      const std::vector<Message>& messages,
                                      bool add_generation_prompt) const {
  std::vector<int> out;
  for (const Segment& s : segments(format, default_system, messages, add_generation_prompt)) {
    if (s.special) {
      // The BOS marker follows the model's own BOS token and add_bos setting.
      if (s.text == "<|begin_of_text|>" || s.text == "<bos>") {
        if (tokenizer.bos() >= 0) out.push_back(tokenizer.bos());
        continue;
      }
      auto id = tokenizer.find(s.text);
      if (id) {
        out.push_back(*id);
        continue;
      }
    }
    const auto ids = tokenizer.encode(s.text, false);
    out.insert(out.end(), ids.begin(), ids.end());
  }
  return out;
}

std::string ChatTemplate::render_text(const std::vector<Message>& messages,
                                      bool add_generation_prompt) const {
  std::string out;
  for (const Segment& s : segments(format, default_system, messages, add_generation_prompt))
    out += s.text;
  return out;
}

}  // namespace chatrec::llm::runtime
