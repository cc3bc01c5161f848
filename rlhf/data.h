// Datasets as JSON Lines in Hugging Face TRL's conventions (text, SFT prompt/completion or messages,
// prompts, preferences), padding into row-major batches, SFT loss masks, and a portable seeded shuffle.
#pragma once

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "nn/tokenizer.h"

namespace nanorlhf::rlhf {

// Every record remembers where it came from ("path:line") so later errors can point at it.
struct TextExample {  // pretraining: {"text": ...}
  std::string text;
  std::string source;
};

// SFT: {"prompt", "completion"} becomes user + assistant messages; {"messages": [...]} is taken as
// is. The training target is every assistant message. In TRL's conversational prompt/completion
// form, "prompt" and "completion" may also be lists of messages.
struct SftExample {
  std::vector<nn::ChatMessage> messages;
  std::string source;
};

struct PromptExample {  // RL prompts: {"prompt": ...}
  std::string prompt;
  std::string source;
};

// The one preference-pair type, read by the reward model and by DPO alike: {"prompt", "chosen",
// "rejected"} with optional "chosen_finished" / "rejected_finished" (default true; false: the
// response was cut at max_new_tokens and keeps no <|eos|>).
struct PreferencePair {
  std::string prompt, chosen, rejected;
  bool chosen_finished = true, rejected_finished = true;
  std::vector<int64_t> prompt_ids;                // <|bos|><|user|>prompt<|assistant|>
  std::vector<int64_t> chosen_ids, rejected_ids;  // each completion, with <|eos|> when finished
  std::string source;                             // "path:line"
};

// Each reader throws std::runtime_error "path:line: what" on bad JSON, a missing field (named), a
// wrong type, an empty text (empty response) or an unknown role. Blank lines are skipped; extra
// fields are ignored, as TRL datasets often carry more columns.
std::vector<TextExample> read_text_jsonl(const std::string& path);
std::vector<SftExample> read_sft_jsonl(const std::string& path);
std::vector<PromptExample> read_prompts_jsonl(const std::string& path);
std::vector<PreferencePair> read_preference_jsonl(const std::string& path);  // text only, no ids

// Fills the ids of each pair. Errors name the pair's source: a prompt that leaves no room in the
// context ctx, or a prompt + response longer than ctx.
void tokenize_pairs(std::vector<PreferencePair>& pairs, const nn::Tokenizer& tok, int64_t ctx);
// read_preference_jsonl, then tokenize_pairs: what `nanorlhf rm` and `nanorlhf dpo` read.
std::vector<PreferencePair> read_preference_pairs(const std::string& path, const nn::Tokenizer& tok, int64_t ctx);

// KTO's unpaired example, TRL's {"prompt", "completion", "label"}: label a JSON boolean (true = the
// completion is desirable; no 0/1 or "yes"), optional "completion_finished" (default true; false: cut
// at max_new_tokens, no <|eos|>).
struct UnpairedExample {
  std::string prompt, completion;
  bool label = true;
  bool finished = true;
  std::vector<int64_t> prompt_ids;      // <|bos|><|user|>prompt<|assistant|>
  std::vector<int64_t> completion_ids;  // with <|eos|> when finished
  std::string source;                   // "path:line"
};
std::vector<UnpairedExample> read_unpaired_jsonl(const std::string& path);  // text only, no ids
// TRL's unpair_preference_dataset: each pair gives its chosen completion as a desirable example and
// its rejected one as an undesirable example (in that order, pair by pair), keeping the pair's source.
std::vector<UnpairedExample> unpair_preferences(const std::vector<PreferencePair>& pairs);
// Either format, told apart by the first record's keys ("chosen"/"rejected": pairs, unpaired;
// "completion"/"label": unpaired); a record of the other format is an error naming its line.
std::vector<UnpairedExample> read_kto_jsonl(const std::string& path);
// The checks of tokenize_pairs, errors naming each example's source.
void tokenize_unpaired(std::vector<UnpairedExample>& examples, const nn::Tokenizer& tok, int64_t ctx);
// read_kto_jsonl, then tokenize_unpaired: what `nanorlhf kto` reads.
std::vector<UnpairedExample> read_kto_examples(const std::string& path, const nn::Tokenizer& tok, int64_t ctx);
// TRL's unpaired JSONL, keys in the order prompt, completion, label (+ completion_finished when false).
void write_unpaired_jsonl(const std::string& path, const std::vector<UnpairedExample>& examples);

// Every non-blank line parsed as JSON, with its 1-based line number.
std::vector<std::pair<int64_t, nlohmann::json>> read_jsonl(const std::string& path);
// One compact JSON object per line, written atomically. Invalid UTF-8 (a sampled byte-level token
// can end mid-character) is written as U+FFFD rather than failing the write.
void write_jsonl(const std::string& path, const std::vector<nlohmann::json>& records);
// The same for records that keep their keys in insertion order ("prompt" before "completion"), as
// the world's files do.
void write_ordered_jsonl(const std::string& path, const std::vector<nlohmann::ordered_json>& records);

// A padded batch, row-major [batch, seq]. attention_mask is 1 on real tokens, 0 on padding;
// loss_mask[b][t] = 1 when token t is a training target (the trainer shifts: position t-1 predicts t).
struct TokenBatch {
  int64_t batch = 0, seq = 0;
  std::vector<int64_t> input_ids;
  std::vector<float> attention_mask;
  std::vector<float> loss_mask;
};

// Pads every sequence to the longest with pad_id, on the left (generation: prompts end together)
// or the right (training). loss_masks is either empty (every real token is a target) or one mask
// per sequence of the same length.
TokenBatch pad_batch(const std::vector<std::vector<int64_t>>& seqs, const std::vector<std::vector<float>>& loss_masks,
                     int64_t pad_id, bool left_pad);

struct SftTokens {
  std::vector<int64_t> ids;      // the chat template of the messages (no generation prompt)
  std::vector<float> loss_mask;  // 1 on assistant content tokens and their closing <|eos|>
};
// Tokenizes an SFT example. Longer than max_len: an error naming the example's source, unless
// truncate, which keeps the first max_len tokens. max_len <= 0 means no limit.
SftTokens encode_sft(const nn::Tokenizer& tok, const SftExample& ex, int64_t max_len, bool truncate = false);

// A permutation of 0..n-1 from std::mt19937_64(seed) and a Fisher-Yates shuffle written out (with
// its own unbiased bounded draw), so the order is the same with every standard library.
std::vector<size_t> shuffled_indices(size_t n, uint64_t seed);

}  // namespace nanorlhf::rlhf
