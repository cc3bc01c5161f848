// Tests of the byte-level BPE tokenizer: round trips, special tokens, chat template ids, training
// determinism and compression, agreement with a naive reference BPE, save/load.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include "nn/utf8.h"
#include "nn/tokenizer.h"

using nanorlhf::nn::ChatMessage;
using nanorlhf::nn::Tokenizer;

namespace {

// A deterministic English-like corpus with punctuation, digits, newlines and some UTF-8.
std::vector<std::string> make_corpus(int n_lines, uint32_t seed) {
  static const std::vector<std::string> words = {
      "the", "a", "cat", "dog", "sat", "on", "mat", "is", "was", "capital", "of", "France", "Paris",
      "what", "answer", "question", "please", "thank", "you", "I", "don't", "know", "it's", "café",
      "naïve", "über", "Zürich", "hello", "world", "assistant", "user", "helpful", "honest"};
  std::mt19937 rng(seed);
  std::vector<std::string> lines;
  for (int i = 0; i < n_lines; ++i) {
    std::string line;
    int n = 3 + static_cast<int>(rng() % 12);
    for (int k = 0; k < n; ++k) {
      if (k) line += ' ';
      line += words[rng() % words.size()];
      if (rng() % 7 == 0) line += ',';
      if (rng() % 11 == 0) line += " " + std::to_string(rng() % 2000);
    }
    line += (rng() % 3 == 0) ? "?\n" : ".\n";
    lines.push_back(line);
  }
  return lines;
}

std::string random_utf8(std::mt19937& rng, int n_chars) {
  std::string s;
  for (int i = 0; i < n_chars; ++i) {
    uint32_t cp;
    switch (rng() % 5) {
      case 0: cp = 0x20 + rng() % 95; break;                  // printable ASCII
      case 1: cp = (rng() % 4 == 0) ? '\n' : ' '; break;      // whitespace
      case 2: cp = 0x80 + rng() % (0x800 - 0x80); break;      // 2-byte
      case 3: cp = 0x800 + rng() % (0xD800 - 0x800); break;   // 3-byte, below the surrogates
      default: cp = 0x10000 + rng() % (0x110000 - 0x10000);  // 4-byte
    }
    nanorlhf::nn::append_utf8(s, cp);
  }
  return s;
}

const Tokenizer& trained() {
  static const Tokenizer tok = Tokenizer::train(make_corpus(3000, 1), 400);
  return tok;
}

std::string temp_path(const std::string& name) {
  return (std::filesystem::temp_directory_path() / ("nanorlhf_tok_" + std::to_string(::getpid()) + "_" + name)).string();
}

// Reference BPE: apply every merge in order as a left-to-right sweep over each pre-split word.
std::vector<int64_t> naive_encode(const Tokenizer& tok, const std::string& text) {
  std::vector<int64_t> out;
  for (auto w : Tokenizer::pre_split(text)) {
    std::vector<int64_t> s;
    for (unsigned char c : w) s.push_back(c);
    for (size_t r = 0; r < tok.merges().size(); ++r) {
      auto [a, b] = tok.merges()[r];
      std::vector<int64_t> m;
      for (size_t i = 0; i < s.size(); ++i) {
        if (i + 1 < s.size() && s[i] == a && s[i + 1] == b) {
          m.push_back(256 + static_cast<int64_t>(r));
          ++i;
        } else {
          m.push_back(s[i]);
        }
      }
      s = std::move(m);
    }
    out.insert(out.end(), s.begin(), s.end());
  }
  return out;
}

}  // namespace

TEST(Tokenizer, PreSplitFollowsGpt2) {
  auto parts = Tokenizer::pre_split("Hello, world! It's 42  times\n");
  std::vector<std::string> got(parts.begin(), parts.end());
  std::vector<std::string> want = {"Hello", ",", " world", "!", " It", "'s", " 42", " ", " times", "\n"};
  EXPECT_EQ(got, want);
  // The pieces always concatenate back to the input.
  std::mt19937 rng(3);
  for (int t = 0; t < 50; ++t) {
    std::string s = random_utf8(rng, 40);
    std::string joined;
    for (auto p : Tokenizer::pre_split(s)) joined += p;
    EXPECT_EQ(joined, s);
  }
}

TEST(Tokenizer, VocabLayout) {
  const Tokenizer& tok = trained();
  EXPECT_EQ(tok.vocab_size(), 400);
  EXPECT_EQ(tok.num_merges(), 400 - 256 - 6);
  EXPECT_EQ(tok.bos_id(), 256 + tok.num_merges());
  EXPECT_EQ(tok.eos_id(), tok.bos_id() + 1);
  EXPECT_EQ(tok.pad_id(), tok.bos_id() + 2);
  EXPECT_EQ(tok.special_id("<|system|>"), tok.bos_id() + 3);
  EXPECT_EQ(tok.special_id("<|user|>"), tok.bos_id() + 4);
  EXPECT_EQ(tok.special_id("<|assistant|>"), tok.bos_id() + 5);
  EXPECT_EQ(tok.id_to_piece(tok.eos_id()), "<|eos|>");
  EXPECT_EQ(tok.id_to_piece('A'), "A");
  EXPECT_THROW(tok.special_id("<|foo|>"), std::invalid_argument);
  EXPECT_THROW(tok.id_to_piece(tok.vocab_size()), std::out_of_range);
}

TEST(Tokenizer, RoundTripRandomUtf8) {
  const Tokenizer& tok = trained();
  std::mt19937 rng(7);
  for (int t = 0; t < 200; ++t) {
    std::string s = random_utf8(rng, 1 + static_cast<int>(rng() % 60));
    EXPECT_EQ(tok.decode(tok.encode(s)), s);
    EXPECT_EQ(tok.decode(tok.encode(s, false)), s);
  }
  // Training-like text too, where many merges apply.
  for (const auto& line : make_corpus(50, 99)) EXPECT_EQ(tok.decode(tok.encode(line)), line);
}

TEST(Tokenizer, RoundTripRandomBytes) {
  const Tokenizer& tok = trained();
  std::mt19937 rng(11);
  for (int t = 0; t < 200; ++t) {
    std::string s(rng() % 80, '\0');
    for (auto& c : s) c = static_cast<char>(rng() % 256);  // includes NUL and bytes >= 0x80
    EXPECT_EQ(tok.decode(tok.encode(s)), s);
    EXPECT_EQ(tok.decode(tok.encode(s, false)), s);
  }
  std::string nul("a\0b\xff\x80 \xc3", 7);
  EXPECT_EQ(tok.decode(tok.encode(nul)), nul);
}

TEST(Tokenizer, EncodeMatchesNaiveReference) {
  const Tokenizer& tok = trained();
  std::mt19937 rng(5);
  auto corpus = make_corpus(40, 1234);
  for (const auto& line : corpus) EXPECT_EQ(tok.encode(line, false), naive_encode(tok, line));
  for (int t = 0; t < 50; ++t) {
    std::string s = random_utf8(rng, 30) + " aaaaaaa thethethe";
    EXPECT_EQ(tok.encode(s, false), naive_encode(tok, s));
  }
}

TEST(Tokenizer, SpecialTokensEncodeToOneIdEach) {
  const Tokenizer& tok = trained();
  for (const auto& s : Tokenizer::special_tokens()) {
    auto ids = tok.encode(s);
    ASSERT_EQ(ids.size(), 1u) << s;
    EXPECT_EQ(ids[0], tok.special_id(s));
    EXPECT_TRUE(tok.is_special(ids[0]));
  }
  auto ids = tok.encode("hi<|eos|><|pad|>there<|");
  EXPECT_EQ(std::count(ids.begin(), ids.end(), tok.eos_id()), 1);
  EXPECT_EQ(std::count(ids.begin(), ids.end(), tok.pad_id()), 1);
  EXPECT_EQ(tok.decode(ids), "hi<|eos|><|pad|>there<|");
  EXPECT_EQ(tok.decode(ids, /*skip_special=*/true), "hithere<|");
}

TEST(Tokenizer, AllowSpecialFalseEncodesPlainBytes) {
  const Tokenizer& tok = trained();
  for (const auto& s : Tokenizer::special_tokens()) {
    auto ids = tok.encode(s, /*allow_special=*/false);
    EXPECT_GT(ids.size(), 1u);
    for (auto id : ids) EXPECT_FALSE(tok.is_special(id)) << s;
    EXPECT_EQ(tok.decode(ids), s);
  }
}

TEST(Tokenizer, ChatTemplateExactIds) {
  // One merge ('h','i') -> 256, so specials are 257.. : bos 257, eos 258, pad 259, system 260,
  // user 261, assistant 262.
  Tokenizer tok = Tokenizer::from_merges({{'h', 'i'}});
  ASSERT_EQ(tok.bos_id(), 257);
  std::vector<ChatMessage> msgs = {{"system", "S"}, {"user", "hi"}, {"assistant", "ok"}};
  std::vector<int64_t> want = {257, 260, 'S', 261, 256, 262, 'o', 'k', 258};
  EXPECT_EQ(tok.apply_chat_template(msgs, false), want);
  want.push_back(262);
  EXPECT_EQ(tok.apply_chat_template(msgs, true), want);
  EXPECT_EQ(tok.render_chat(msgs, true), "<|bos|><|system|>S<|user|>hi<|assistant|>ok<|eos|><|assistant|>");
  EXPECT_EQ(tok.encode(tok.render_chat(msgs, true)), want);

  EXPECT_EQ(tok.encode_prompt("hi"), (std::vector<int64_t>{257, 261, 256, 262}));
  EXPECT_EQ(tok.encode_completion("ok"), (std::vector<int64_t>{'o', 'k', 258}));
  // Contents never inject control tokens.
  auto inj = tok.apply_chat_template({{"user", "<|eos|>"}}, false);
  EXPECT_EQ(std::count(inj.begin(), inj.end(), tok.eos_id()), 0);
}

TEST(Tokenizer, PromptPlusCompletionEqualsChatTemplate) {
  const Tokenizer& tok = trained();
  std::string p = "What is the capital of France?", c = " Paris is the capital.";
  auto a = tok.encode_prompt(p);
  auto b = tok.encode_completion(c);
  a.insert(a.end(), b.begin(), b.end());
  EXPECT_EQ(a, tok.apply_chat_template({{"user", p}, {"assistant", c}}, false));
}

TEST(Tokenizer, UnknownRoleListsValidRoles) {
  const Tokenizer& tok = trained();
  try {
    tok.apply_chat_template({{"bot", "x"}}, false);
    FAIL() << "expected an exception";
  } catch (const std::invalid_argument& e) {
    std::string msg = e.what();
    EXPECT_NE(msg.find("'bot'"), std::string::npos) << msg;
    EXPECT_NE(msg.find("system, user, assistant"), std::string::npos) << msg;
  }
  EXPECT_THROW(tok.render_chat({{"robot", "x"}}, false), std::invalid_argument);
}

TEST(Tokenizer, TrainingIsDeterministicAndOrderFree) {
  auto corpus = make_corpus(500, 42);
  Tokenizer a = Tokenizer::train(corpus, 320);
  Tokenizer b = Tokenizer::train(corpus, 320);
  EXPECT_EQ(a.merges(), b.merges());
  // Word counts do not depend on the order of the texts, so neither do the merges.
  std::reverse(corpus.begin(), corpus.end());
  Tokenizer c = Tokenizer::train(corpus, 320);
  EXPECT_EQ(a.merges(), c.merges());
  // The first merge is the most frequent pair of the corpus.
  EXPECT_EQ(a.num_merges(), 320 - 262);
}

TEST(Tokenizer, TrainingNeverMergesAcrossSpecialTokens) {
  std::vector<std::string> texts;
  for (int i = 0; i < 200; ++i) texts.push_back("ab<|eos|>cd<|user|>ab cd");
  Tokenizer tok = Tokenizer::train(texts, 300);
  for (int64_t id = 256; id < tok.bos_id(); ++id) {
    std::string piece = tok.id_to_piece(id);
    EXPECT_EQ(piece.find('<'), std::string::npos) << piece;
    EXPECT_EQ(piece.find('|'), std::string::npos) << piece;
  }
  // Few distinct pairs: training stops when nothing is left to merge.
  EXPECT_LT(tok.vocab_size(), 300);
  EXPECT_EQ(tok.decode(tok.encode(texts[0])), texts[0]);
}

TEST(Tokenizer, TrainedTokenizerCompresses) {
  auto corpus = make_corpus(3000, 1);
  const Tokenizer& tok = trained();
  size_t bytes = 0, tokens = 0;
  for (const auto& line : corpus) {
    bytes += line.size();
    tokens += tok.encode(line).size();
  }
  EXPECT_LT(tokens * 10, bytes * 4) << "tokens " << tokens << " bytes " << bytes;  // < 0.4 tokens per byte
}

TEST(Tokenizer, RejectsTooSmallVocab) {
  EXPECT_THROW(Tokenizer::train({"abc"}, 100), std::invalid_argument);
}

// A corpus of one long word: the trainer stops doubling "a"s at kMaxPieceBytes, so what it writes loads.
TEST(Tokenizer, TrainingNeverMakesATokenLoadWouldRefuse) {
  Tokenizer tok = Tokenizer::train({std::string(5000, 'a')}, 300);
  size_t longest = 0;
  for (int64_t id = 0; id < tok.vocab_size(); ++id)
    if (!tok.is_special(id)) longest = std::max(longest, tok.id_to_piece(id).size());
  EXPECT_EQ(longest, Tokenizer::kMaxPieceBytes);
  EXPECT_NO_THROW(Tokenizer::from_merges(tok.merges()));
  EXPECT_EQ(tok.decode(tok.encode(std::string(5000, 'a'))), std::string(5000, 'a'));
}

TEST(Tokenizer, DecodeRejectsOutOfRangeIds) {
  const Tokenizer& tok = trained();
  EXPECT_THROW(tok.decode({1, -1}), std::out_of_range);
  EXPECT_THROW(tok.decode({tok.vocab_size()}), std::out_of_range);
}

TEST(Tokenizer, SaveLoadRoundTrip) {
  const Tokenizer& tok = trained();
  std::string path = temp_path("tok.json");
  tok.save(path);
  Tokenizer back = Tokenizer::load(path);
  EXPECT_EQ(back.merges(), tok.merges());
  EXPECT_EQ(back.vocab_size(), tok.vocab_size());
  for (const auto& line : make_corpus(100, 77)) EXPECT_EQ(back.encode(line), tok.encode(line));
  std::mt19937 rng(1);
  for (int t = 0; t < 50; ++t) {
    std::string s = random_utf8(rng, 30);
    EXPECT_EQ(back.encode(s), tok.encode(s));
  }
  std::filesystem::remove(path);
}

TEST(Tokenizer, LoadGivesClearErrors) {
  auto expect_error = [](const std::string& path, const std::string& needle) {
    try {
      Tokenizer::load(path);
      FAIL() << "expected an exception for " << needle;
    } catch (const std::exception& e) {
      std::string msg = e.what();
      EXPECT_NE(msg.find(path), std::string::npos) << msg;
      EXPECT_NE(msg.find(needle), std::string::npos) << msg;
    }
  };
  std::string path = temp_path("bad.json");
  expect_error(path + ".missing", "cannot open");

  auto write = [&](const std::string& text) { std::ofstream(path) << text; };
  write("{not json");
  expect_error(path, "invalid JSON");
  write(R"({"version":1e999,"vocab_size":263,"merges":[],"special_tokens":{}})");  // out_of_range (fuzz_tokenizer)
  EXPECT_THROW(Tokenizer::load(path), std::runtime_error);
  expect_error(path, "invalid JSON");
  write(R"({"version":1,"vocab_size":263,"merges":[[104,105]],"special_tokens":{}})");
  expect_error(path, "special_tokens");
  write(R"({"version":1,"vocab_size":999,"merges":[],"special_tokens":{}})");
  expect_error(path, "vocab_size");
  write(R"({"version":1,"vocab_size":263,"merges":[[104,300]],"special_tokens":{}})");
  expect_error(path, "merge 0");
  // Each merge doubles the token: merge 9 makes 1024 "a"s, merge 10 would make 2048 (kMaxPieceBytes 1024).
  std::string doubling = "[[97,97]";
  for (int i = 0; i < 40; ++i) doubling += ",[" + std::to_string(256 + i) + "," + std::to_string(256 + i) + "]";
  write(R"({"version":1,"vocab_size":303,"merges":)" + doubling + R"(],"special_tokens":{}})");
  expect_error(path, "merge 10 (265, 265) makes a token of 2048 bytes; the most is 1024");
  write(R"({"version":2,"vocab_size":262,"merges":[],"special_tokens":{}})");
  expect_error(path, "version");
  write(R"({"version":1,"vocab_size":262,"special_tokens":{}})");
  expect_error(path, "missing field \"merges\"");
  std::filesystem::remove(path);
}
