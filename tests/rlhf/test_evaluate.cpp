// Evaluation: deterministic for a seed, a model against itself ties (win rate 1/2, KL 0), win rates
// of A vs B and B vs A add to 1, the KL is the k1 sum of sequence log-probs, and the run files.
#include <gtest/gtest.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "nanorlhf/nanorlhf.h"
#include "nn/losses.h"
#include "rlhf/data.h"
#include "rlhf/evaluation.h"
#include "rlhf/checkpoints.h"
#include "rlhf/world.h"
#include "test_util.h"

using namespace nanorlhf;
namespace fs = std::filesystem;

namespace {

nn::GPTConfig micro(const nn::Tokenizer &tok) {
  return {.vocab = tok.vocab_size(), .ctx = 96, .d_model = 32, .n_layer = 2, .n_head = 2};
}

struct Fixture {
  nn::Tokenizer tok;
  rlhf::World world;
  std::vector<std::string> prompts;
  Fixture() {
    rlhf::WorldConfig wc;
    wc.n_pretrain_docs = 10;
    wc.n_sft = 5;
    wc.n_prompts = 10;
    wc.n_eval_prompts = 12;
    world = rlhf::make_world(wc);
    prompts = world.eval_prompts;
  }
};

rlhf::EvalOptions opts() { return {.max_new_tokens = 16, .temperature = 1.0, .seed = 9, .batch = 5}; }

bool same(const rlhf::EvalResult &a, const rlhf::EvalResult &b) {
  if (a.rows.size() != b.rows.size()) return false;
  for (size_t i = 0; i < a.rows.size(); ++i)
    if (a.rows[i].response != b.rows[i].response || a.rows[i].ref_response != b.rows[i].ref_response ||
        a.rows[i].kl != b.rows[i].kl)
      return false;
  return a.oracle_reward == b.oracle_reward && a.win_rate == b.win_rate && a.kl_to_ref == b.kl_to_ref;
}

}  // namespace

TEST(Evaluate, AModelAgainstItselfTiesAndRunsAreDeterministic) {
  Fixture f;
  rlhf::Oracle oracle(f.world.kb);
  manual_seed(1);
  nn::GPT gpt(micro(f.tok));
  rlhf::EvalResult a = rlhf::evaluate(gpt, gpt, f.tok, oracle, f.prompts, opts());
  ASSERT_EQ(a.rows.size(), f.prompts.size());
  EXPECT_EQ(a.win_rate, 0.5);
  EXPECT_EQ(a.win_rate_se, 0.0);  // every row ties: no spread
  EXPECT_EQ(a.kl_to_ref, 0.0);
  EXPECT_EQ(a.oracle_reward, a.ref_oracle_reward);
  EXPECT_GT(a.response_length, 0.0);
  manual_seed(12345);  // the global stream does not matter: sampling is seeded by the options
  rlhf::EvalResult b = rlhf::evaluate(gpt, gpt, f.tok, oracle, f.prompts, opts());
  EXPECT_TRUE(same(a, b));
  // Another seed samples other responses.
  rlhf::EvalOptions o = opts();
  o.seed = 10;
  rlhf::EvalResult c = rlhf::evaluate(gpt, gpt, f.tok, oracle, f.prompts, o);
  EXPECT_FALSE(same(a, c));
}

// A's samples against B's are B's against A's (same seeds), so the two win rates add to 1; and the
// KL of each row is the difference of the two models' sequence log-probs of A's response.
TEST(Evaluate, WinRatesAreSymmetricAndKlIsTheLogRatio) {
  Fixture f;
  rlhf::Oracle oracle(f.world.kb);
  manual_seed(2);
  nn::GPT a(micro(f.tok)), b(micro(f.tok));
  rlhf::EvalResult ab = rlhf::evaluate(a, b, f.tok, oracle, f.prompts, opts());
  rlhf::EvalResult ba = rlhf::evaluate(b, a, f.tok, oracle, f.prompts, opts());
  EXPECT_DOUBLE_EQ(ab.win_rate + ba.win_rate, 1.0);
  EXPECT_NEAR(ab.oracle_reward, ba.ref_oracle_reward, 1e-12);
  NoGradGuard ng;
  double mean_kl = 0;
  std::vector<double> kl_logged, kl_recomputed;  // rows whose response re-encodes exactly
  for (const auto &row : ab.rows) {
    std::vector<int64_t> ids = f.tok.encode_prompt(row.prompt);
    const int64_t P = (int64_t)ids.size();
    // The response tokens again: byte-level ids re-encode exactly unless a special token was
    // dropped by the decode, which the length check catches.
    std::vector<int64_t> resp = row.finished ? f.tok.encode_completion(row.response) : f.tok.encode(row.response, false);
    if ((int64_t)resp.size() != row.length) continue;
    ids.insert(ids.end(), resp.begin(), resp.end());
    const int64_t T = (int64_t)ids.size();
    std::vector<float> m(T, 0.f);
    for (int64_t t = P; t < T; ++t) m[t] = 1.f;
    Tensor x = from_vector<int64_t>(ids, {1, T}), mask = from_vector<float>(m, {1, T});
    double lp_a = nn::sequence_logprobs(a.forward(x), x, mask).item();
    double lp_b = nn::sequence_logprobs(b.forward(x), x, mask).item();
    kl_logged.push_back(row.kl);
    kl_recomputed.push_back(lp_a - lp_b);
  }
  EXPECT_GE(kl_logged.size(), 3u);
  EXPECT_TRUE(nr_test::allclose(kl_logged, kl_recomputed, {.atol = 1e-3, .rtol = 0}));
  for (const auto &row : ab.rows) mean_kl += row.kl / double(ab.rows.size());
  EXPECT_NEAR(ab.kl_to_ref, mean_kl, 1e-6);
}

TEST(Evaluate, RunWritesMetricsAndSamples) {
  Fixture f;
  fs::path dir = fs::temp_directory_path() / ("nanorlhf_test_eval_" + std::to_string(::getpid()));
  fs::remove_all(dir);
  rlhf::write_world(f.world, (dir / "data").string());
  manual_seed(3);
  nn::GPT gpt(micro(f.tok));
  rlhf::save_run((dir / "sft").string(), gpt, f.tok, nlohmann::json::object());
  rlhf::Config c(rlhf::eval_options().schema());
  c.set("policy=" + (dir / "sft").string());
  c.set("ref=" + (dir / "sft").string());
  c.set("prompts=" + (dir / "data/eval_prompts.jsonl").string());
  c.set("world=" + (dir / "data").string());
  c.set("out=" + (dir / "eval").string());
  c.set("n_prompts=6");
  c.set("max_new_tokens=12");
  c.set("samples=3");
  rlhf::EvalResult r = rlhf::run_evaluate(rlhf::eval_options().read(c));
  EXPECT_EQ(r.rows.size(), 6u);
  EXPECT_EQ(r.win_rate, 0.5);
  auto lines = rlhf::read_jsonl((dir / "eval/metrics.jsonl").string());
  ASSERT_EQ(lines.size(), 1u);
  for (auto key : {"eval/oracle_reward", "eval/win_rate_vs_sft", "eval/win_rate_se", "eval/kl_to_ref", "eval/response_length"})
    EXPECT_TRUE(lines[0].second.contains(key)) << key;
  EXPECT_EQ(lines[0].second["eval/win_rate_vs_sft"].get<double>(), 0.5);
  std::ifstream s(dir / "eval/samples.txt");
  std::string text((std::istreambuf_iterator<char>(s)), {});
  EXPECT_NE(text.find("[3] user:"), std::string::npos) << text;
  EXPECT_EQ(text.find("[4] user:"), std::string::npos);
  c.set("overwrite=true");  // the same evaluation again, into the same folder
  rlhf::EvalResult again = rlhf::run_evaluate(rlhf::eval_options().read(c));
  EXPECT_TRUE(same(r, again));
  // rows.jsonl: every prompt with both responses and the oracle's reasons.
  auto rows = rlhf::read_jsonl((dir / "eval/rows.jsonl").string());
  ASSERT_EQ(rows.size(), 6u);
  // (responses of this untrained model are not valid UTF-8; the file holds them with U+FFFD)
  EXPECT_EQ(rows[2].second["prompt"].get<std::string>(), r.rows[2].prompt);
  EXPECT_EQ(rows[2].second["ref_score"].get<double>(), r.rows[2].ref_score.total);
  EXPECT_EQ(rows[2].second["score"].get<double>(), r.rows[2].score.total);
  fs::remove_all(dir);
}

// The per-kind table counts wins, ties and losses per prompt kind exactly.
TEST(Evaluate, ByKindSplitsWinRateAndScoresPerPromptKind) {
  Fixture f;
  rlhf::Oracle oracle(f.world.kb);
  // Two known-fact prompts and one harmful request, scored by hand-picked responses.
  std::vector<std::string> fact_prompts, harm_prompts;
  for (const auto &p : rlhf::all_prompts(f.world.kb)) {
    if (p.kind == rlhf::PromptKind::Fact && fact_prompts.size() < 2) fact_prompts.push_back(p.text);
    if (p.kind == rlhf::PromptKind::Harmful && harm_prompts.empty()) harm_prompts.push_back(p.text);
  }
  ASSERT_EQ(fact_prompts.size(), 2u);
  ASSERT_EQ(harm_prompts.size(), 1u);
  auto row = [&](const std::string &prompt, const std::string &y, const std::string &y_ref) {
    rlhf::EvalRow r;
    r.prompt = prompt, r.response = y, r.ref_response = y_ref, r.finished = r.ref_finished = true;
    r.score = oracle.score(prompt, y, true), r.ref_score = oracle.score(prompt, y_ref, true);
    return r;
  };
  const std::string refuse = "Sorry, I can not help with that.";
  rlhf::EvalResult res;
  res.rows = {row(fact_prompts[0], refuse, refuse), row(fact_prompts[1], refuse, refuse),
              row(harm_prompts[0], refuse, "Hello.")};
  // The fact rows tie (both refuse); the harmful row is a win: a polite refusal (3) against a
  // request not declined (helpful -0.5 - 0.24 for one extra word, harmless 1 - 0.5).
  ASSERT_EQ(res.rows[2].score.total, 3.0);
  ASSERT_NEAR(res.rows[2].ref_score.total, -0.74 + 1.0 + 0.5, 1e-12);
  nlohmann::json t = rlhf::by_kind(res, oracle);
  ASSERT_EQ(t.size(), 2u) << t.dump();
  EXPECT_EQ(t["fact"]["prompts"].get<int64_t>(), 2);
  EXPECT_EQ(t["fact"]["win_rate_vs_sft"].get<double>(), 0.5);
  EXPECT_EQ(t["fact"]["ties"].get<double>(), 1.0);
  EXPECT_EQ(t["harmful"]["prompts"].get<int64_t>(), 1);
  EXPECT_EQ(t["harmful"]["win_rate_vs_sft"].get<double>(), 1.0);
  EXPECT_EQ(t["harmful"]["ties"].get<double>(), 0.0);
  EXPECT_EQ(t["harmful"]["oracle_reward"].get<double>(), 3.0);
  EXPECT_EQ(t["harmful"]["ref_oracle_reward"].get<double>(), res.rows[2].ref_score.total);
}

// Hand numbers: two prompts drawn twice each, one always won and one always lost, is two pieces of
// evidence (SE 0.5), not four; with one draw per prompt the formula is the usual s / sqrt(n).
TEST(Evaluate, ClusteredStandardErrorCountsAPromptOnce) {
  const std::vector<double> x = {1, 1, 0, 0};
  EXPECT_NEAR(rlhf::clustered_standard_error({"a", "a", "b", "b"}, x), 0.5, 1e-15);
  const double s = std::sqrt(1.0 / 3.0);  // sample standard deviation of {1, 1, 0, 0}
  EXPECT_NEAR(rlhf::clustered_standard_error({"a", "b", "c", "d"}, x), s / 2.0, 1e-15);
  // Within-prompt disagreement that cancels leaves only the spread between prompts.
  EXPECT_NEAR(rlhf::clustered_standard_error({"a", "a", "b", "b"}, {1, 0, 1, 0}), 0.0, 1e-15);
  EXPECT_TRUE(std::isnan(rlhf::clustered_standard_error({"a", "a"}, {1, 0})));
  EXPECT_TRUE(
      nr_test::throws_with([&] { rlhf::clustered_standard_error({"a"}, {1, 0}); }, "1 cluster labels for 2 values"));
}
