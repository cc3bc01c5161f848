// The chat templates. nanorlhf's tokenizer has a token per role: <|bos|><|user|>Hi<|assistant|>Hello<|eos|>.
// GPT-2 has none, so a GPT-2 tokenizer writes roles as text, in Anthropic HH's format (the one
// TRL's examples fine-tune GPT-2-family base models on), with <|endoftext|> as bos and eos:
// <|endoftext|>\n\nHuman: Hi\n\nAssistant: Hello<|endoftext|>
#include <algorithm>
#include <stdexcept>

#include "nn/tokenizer.h"

namespace nanorlhf::nn {

namespace {

void check_role(std::string_view role) {
  const auto& roles = Tokenizer::chat_roles();
  if (std::find(roles.begin(), roles.end(), role) != roles.end()) return;
  std::string valid;
  for (const auto& r : roles) valid += (valid.empty() ? "" : ", ") + r;
  throw std::invalid_argument("unknown chat role '" + std::string(role) + "'; valid roles: " + valid);
}

// GPT-2's role prefix as text: "\n\nHuman:", "\n\nAssistant:", "\n\nSystem:".
std::string text_prefix(std::string_view role) {
  check_role(role);
  return role == "user" ? "\n\nHuman:" : role == "assistant" ? "\n\nAssistant:" : "\n\nSystem:";
}

}  // namespace

int64_t Tokenizer::role_id(std::string_view role) const {
  if (gpt2_)
    throw std::invalid_argument("GPT-2's tokenizer has no role tokens; its chat template writes the role '" +
                                std::string(role) + "' as text (Tokenizer::role_prefix)");
  check_role(role);
  return special_id("<|" + std::string(role) + "|>");
}

std::vector<int64_t> Tokenizer::role_prefix(std::string_view role) const {
  if (gpt2_) return gpt2_->encode_ordinary(text_prefix(role));
  return {role_id(role)};
}

std::vector<int64_t> Tokenizer::encode_content(std::string_view content) const {
  if (gpt2_) return gpt2_->encode_ordinary(" " + std::string(content));
  std::vector<int64_t> out;
  encode_plain(content, out);
  return out;
}

std::vector<int64_t> Tokenizer::apply_chat_template(const std::vector<ChatMessage>& messages,
                                                    bool add_generation_prompt) const {
  std::vector<int64_t> out{bos_id()};
  auto append = [&](const std::vector<int64_t>& ids) { out.insert(out.end(), ids.begin(), ids.end()); };
  for (const auto& m : messages) {
    append(role_prefix(m.role));
    append(encode_content(m.content));
    if (m.role == "assistant") out.push_back(eos_id());
  }
  if (add_generation_prompt) append(role_prefix("assistant"));
  return out;
}

std::string Tokenizer::render_chat(const std::vector<ChatMessage>& messages, bool add_generation_prompt) const {
  if (!gpt2_) return render_chat_text(messages, add_generation_prompt);
  std::string out = "<|endoftext|>";
  for (const auto& m : messages) {
    out += text_prefix(m.role) + " " + m.content;
    if (m.role == "assistant") out += "<|endoftext|>";
  }
  if (add_generation_prompt) out += text_prefix("assistant");
  return out;
}

std::string render_chat_text(const std::vector<ChatMessage>& messages, bool add_generation_prompt, bool last_finished) {
  std::string out = "<|bos|>";
  for (size_t i = 0; i < messages.size(); ++i) {
    const ChatMessage& m = messages[i];
    check_role(m.role);
    out += "<|" + m.role + "|>" + m.content;
    if (m.role == "assistant" && (last_finished || i + 1 < messages.size())) out += "<|eos|>";
  }
  if (add_generation_prompt) out += "<|assistant|>";
  return out;
}

std::vector<int64_t> Tokenizer::encode_prompt(std::string_view user_prompt) const {
  return apply_chat_template({ChatMessage{"user", std::string(user_prompt)}}, true);
}

std::vector<int64_t> Tokenizer::encode_completion(std::string_view completion) const {
  std::vector<int64_t> out = encode_content(completion);
  out.push_back(eos_id());
  return out;
}

}  // namespace nanorlhf::nn
