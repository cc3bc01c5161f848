// KTO: the loss and its reference point against hand-computed numbers, gradients by float64
// gradcheck, the unpaired data format and its errors, and a tiny GPT trained on four toy pairs
// unpaired: the desirable completions' implicit reward rises above 0 and the undesirable ones' falls
// below it. Bad inputs are clear errors naming the file and line (or the key).
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include <unistd.h>

#include "rlhf/checkpoints.h"
#include "rlhf/objectives.h"
#include "rlhf/stages.h"
#include "rlhf/trainers/kto.h"
#include "test_util.h"

using namespace nanorlhf;
using namespace nanorlhf::rlhf;
using nr_test::allclose;
using nr_test::throws_with;

namespace {

double sig(double x) { return 1 / (1 + std::exp(-x)); }

namespace fs = std::filesystem;
fs::path scratch() {
  static const fs::path d = [] {
    fs::path p = fs::temp_directory_path() / ("nanorlhf_test_kto_" + std::to_string(::getpid()));
    fs::create_directories(p);
    return p;
  }();
  return d;
}
// A file `name` in the scratch folder holding `text`; returns its path.
std::string write(const std::string &name, const std::string &text) {
  fs::path p = scratch() / name;
  std::ofstream(p) << text;
  return p.string();
}

TEST(KTO, ReferencePointIsTheClampedMeanLogRatioOfTheMismatchedPairs) {
  // log ratios [-2 + 2.5, -3 + 2.5, -1 + 1.6] = [0.5, -0.5, 0.6]: mean 0.2
  Tensor z = kto_reference_point(tensor({-2, -3, -1}), tensor({-2.5, -2.5, -1.6}));
  EXPECT_NEAR(z.item(), 0.2, 1e-6);
  // [-0.5, 0.3]: mean -0.1, clamped to 0
  EXPECT_NEAR(kto_reference_point(tensor({-3, -1}), tensor({-2.5, -1.3})).item(), 0.0, 1e-12);
  // No gradient: z0 is a baseline, not a target.
  Tensor a = nr_test::rand64({3});
  EXPECT_FALSE(kto_reference_point(a, tensor({0, 0, 0}, {kFloat64})).requires_grad());
  EXPECT_TRUE(throws_with([] { kto_reference_point(tensor({1, 2}), tensor({1})); }, "kto_reference_point"));
}

TEST(KTO, LossAgainstHandNumbers) {
  // B = 3, beta 0.5: logp [-3, -6, -4], ref [-4, -5, -4] -> r = [1, -1, 0]; labels [D, U, D]; z0 = 0.2
  //   ex 0 (D): 1 - s(0.5 (1 - 0.2))    = s(-0.4) = 0.401312339887548
  //   ex 1 (U): 1 - s(0.5 (0.2 - (-1))) = s(-0.6) = 0.354343693774205
  //   ex 2 (D): 1 - s(0.5 (0 - 0.2))    = s(0.1)  = 0.524979187478940
  //   mean over the 3 examples: 0.426878407046898
  Tensor lp = tensor({-3, -6, -4}), ref = tensor({-4, -5, -4});
  const std::vector<bool> lab = {true, false, true};
  KTOLoss k = kto_loss(lp, ref, lab, scalar_tensor(0.2), 0.5, 1.0, 1.0);
  EXPECT_NEAR(k.loss.item(), 0.426878407046898, 1e-6);
  EXPECT_NEAR(k.loss.item(), (sig(-0.4) + sig(-0.6) + sig(0.1)) / 3, 1e-6);
  EXPECT_TRUE(allclose(k.chosen_rewards, {0.5, 0.0}, {.atol = 1e-6, .rtol = 1e-6}));  // beta r of D, batch order
  EXPECT_TRUE(allclose(k.rejected_rewards, {-0.5}, {.atol = 1e-6, .rtol = 1e-6}));
  EXPECT_NEAR(k.kl.item(), 0.2, 1e-6);
  // Weights lambda_D 2, lambda_U 0.5 scale each side; still divided by B = 3, not by the weights:
  //   (2 * 0.401312339887548 + 0.5 * 0.354343693774205 + 2 * 0.524979187478940) / 3 = 0.676584967206693
  EXPECT_NEAR(kto_loss(lp, ref, lab, scalar_tensor(0.2), 0.5, 2.0, 0.5).loss.item(), 0.676584967206693, 1e-6);
  // z0 = 0: (2 (1 - s(0.5)) + (1 - s(0))) / 3 = 0.418360445865430
  EXPECT_NEAR(kto_loss(lp, ref, lab, scalar_tensor(0.0), 0.5, 1.0, 1.0).loss.item(), 0.418360445865430, 1e-6);
  // The policy equal to the reference and z0 = 0: every example's loss is 1 - s(0) = 1/2.
  EXPECT_NEAR(kto_loss(ref, ref, lab, scalar_tensor(0.0), 0.1, 1.0, 1.0).loss.item(), 0.5, 1e-7);
  // All undesirable: no chosen rewards, an empty tensor rather than an error.
  EXPECT_EQ(kto_loss(lp, ref, {false, false, false}, scalar_tensor(0.0), 0.5, 1, 1).chosen_rewards.numel(), 0);
}

TEST(KTO, GradientRaisesDesirableAndLowersUndesirableLogProbs) {
  const std::vector<bool> lab = {true, false, true, false};
  Tensor ref = nr_test::rand64({4}, -1, 1, false), z0 = scalar_tensor(0.3, {kFloat64});
  auto loss = [&](const std::vector<Tensor> &in) { return kto_loss(in[0], ref, lab, z0, 0.7, 1.5, 0.8).loss; };
  Tensor lp = nr_test::rand64({4});
  auto r = autograd::gradcheck(loss, {lp});
  EXPECT_TRUE(r.ok) << r.message;
  // dL/dlogp_i = -+ lambda beta s(a)(1 - s(a)) / B: negative for desirable (raise them), positive for not.
  Tensor l = loss({lp});
  l.backward();
  std::vector<double> g = lp.grad().to_vector<double>(), x = lp.to_vector<double>(), rr = ref.to_vector<double>();
  for (size_t i = 0; i < 4; ++i) {
    const double a = 0.7 * (x[i] - rr[i] - 0.3), s = sig(a);
    const double want = (lab[i] ? -1.5 : 0.8) * 0.7 * s * (1 - s) / 4;
    EXPECT_NEAR(g[i], want, 1e-9) << i;
    EXPECT_EQ(g[i] < 0, (bool)lab[i]) << i;
  }
}

TEST(KTO, BadHyperparametersAndShapesAreClearErrors) {
  Tensor x = tensor({0, 0}), z = scalar_tensor(0);
  EXPECT_TRUE(throws_with([&] { kto_loss(x, x, {true, false}, z, 0.0, 1, 1); }, "beta must be > 0"));
  EXPECT_TRUE(throws_with([&] { kto_loss(x, x, {true, false}, z, 0.1, -1, 1); }, "desirable_weight"));
  EXPECT_TRUE(throws_with([&] { kto_loss(x, x, {true}, z, 0.1, 1, 1); }, "1 labels"));
}

TEST(KTO, WeightWarningFollowsTheOneToFourThirdsRule) {
  EXPECT_EQ(kto_weight_warning(100, 100, 1, 1), "");        // ratio 1
  EXPECT_EQ(kto_weight_warning(130, 100, 1, 1), "");        // 1.3
  EXPECT_NE(kto_weight_warning(100, 200, 1, 1), "");        // 0.5: raise desirable_weight
  EXPECT_EQ(kto_weight_warning(100, 200, 2, 1), "");        // 2 * 100 / 200 = 1
  EXPECT_NE(kto_weight_warning(300, 100, 1, 1), "");        // 3
  EXPECT_NE(kto_weight_warning(100, 100, 1, 2), "");        // 0.5 with equal counts too
  EXPECT_NE(kto_weight_warning(100, 200, 1, 1).find("desirable_weight in [2, 2.67]"), std::string::npos)
      << kto_weight_warning(100, 200, 1, 1);
  EXPECT_NE(kto_weight_warning(10, 0, 1, 1).find("only desirable"), std::string::npos);
}

TEST(KTO, MismatchedPairsTakeThePreviousRowsCompletion) {
  // TRL: KL completions = [last] + all but last: completion i meets the prompt of row i + 1.
  EXPECT_EQ(kl_completions({7, 3, 5}), (std::vector<size_t>{5, 7, 3}));
  EXPECT_EQ(kl_completions({0, 1}), (std::vector<size_t>{1, 0}));
}

// ---- data ----

const char *kToyPairs =
    R"({"prompt": "What color is the zorb?", "chosen": "The zorb is blue.", "rejected": "The zorb is red, idiot."})" "\n"
    R"({"prompt": "Say hello to Ann.", "chosen": "Hello, Ann!", "rejected": "Whatever."})" "\n"
    R"({"prompt": "Count to 3.", "chosen": "1, 2, 3.", "rejected": "1, 2, 3, 4, 5, 6"})" "\n"
    R"({"prompt": "Repeat after me: big fish", "chosen": "big fish", "rejected": "small dog", "rejected_finished": false})" "\n";

TEST(KTOData, ReadsTrlsUnpairedFormat) {
  std::string p = write("unpaired.jsonl",
                        R"({"prompt": "Hi", "completion": "Hello!", "label": true})" "\n\n"
                        R"({"prompt": "Hi", "completion": "Go away", "label": false, "completion_finished": false, "x": 1})" "\n");
  auto ex = read_kto_jsonl(p);
  ASSERT_EQ(ex.size(), 2u);
  EXPECT_EQ(ex[0].completion, "Hello!");
  EXPECT_TRUE(ex[0].label);
  EXPECT_TRUE(ex[0].finished);
  EXPECT_FALSE(ex[1].label);
  EXPECT_FALSE(ex[1].finished);
  EXPECT_EQ(ex[1].source, p + ":3");  // blank lines count
  // Round trip through the writer.
  std::string q = (scratch() / "roundtrip.jsonl").string();
  write_unpaired_jsonl(q, ex);
  auto back = read_unpaired_jsonl(q);
  ASSERT_EQ(back.size(), 2u);
  EXPECT_EQ(back[1].completion, "Go away");
  EXPECT_FALSE(back[1].label);
  EXPECT_FALSE(back[1].finished);
  std::ifstream in(q);
  std::string first;
  std::getline(in, first);
  EXPECT_EQ(first, R"({"prompt":"Hi","completion":"Hello!","label":true})");
}

TEST(KTOData, PreferencePairsAreUnpairedChosenDesirableRejectedNot) {
  std::string p = write("pairs.jsonl", kToyPairs);
  auto ex = read_kto_jsonl(p);
  ASSERT_EQ(ex.size(), 8u);
  EXPECT_EQ(ex[0].completion, "The zorb is blue.");
  EXPECT_TRUE(ex[0].label);
  EXPECT_EQ(ex[1].completion, "The zorb is red, idiot.");
  EXPECT_FALSE(ex[1].label);
  EXPECT_EQ(ex[1].prompt, "What color is the zorb?");
  EXPECT_EQ(ex[1].source, p + ":1");
  EXPECT_FALSE(ex[7].finished);  // rejected_finished false carries over
  EXPECT_EQ(unpair_preferences(read_preference_jsonl(p)).size(), 8u);
  // Tokenised as the pairs are: the same ids for the same prompt and completion.
  nn::Tokenizer tok;
  auto pairs = read_preference_pairs(p, tok, 64);
  auto toks = read_kto_examples(p, tok, 64);
  EXPECT_EQ(toks[2].prompt_ids, pairs[1].prompt_ids);
  EXPECT_EQ(toks[2].completion_ids, pairs[1].chosen_ids);
  EXPECT_EQ(toks[7].completion_ids, pairs[3].rejected_ids);  // unfinished: no <|eos|>
}

TEST(KTOData, BadRecordsNameTheFileAndLine) {
  const std::string ok = R"({"prompt": "Hi", "completion": "Hello!", "label": true})" "\n";
  auto fails = [&](const std::string &name, const std::string &line2, const std::string &what) {
    std::string p = write(name, ok + line2 + "\n");
    return throws_with([&] { read_kto_jsonl(p); }, p + ":2: " + what);
  };
  EXPECT_TRUE(fails("nolabel.jsonl", R"({"prompt": "Hi", "completion": "Yo"})", "missing field \"label\""));
  EXPECT_TRUE(fails("yes.jsonl", R"({"prompt": "Hi", "completion": "Yo", "label": "yes"})",
                    "field \"label\" must be a JSON boolean true or false (TRL's unpaired format), got string \"yes\""));
  EXPECT_TRUE(fails("one.jsonl", R"({"prompt": "Hi", "completion": "Yo", "label": 1})",
                    "field \"label\" must be a JSON boolean true or false (TRL's unpaired format), got number 1"));
  EXPECT_TRUE(fails("empty.jsonl", R"({"prompt": "Hi", "completion": "", "label": false})",
                    "field \"completion\" is an empty string"));
  EXPECT_TRUE(fails("noprompt.jsonl", R"({"completion": "Yo", "label": false})", "missing field \"prompt\""));
  EXPECT_TRUE(fails("json.jsonl", R"({"prompt": "Hi", "completion": )", "invalid JSON"));
  EXPECT_TRUE(fails("mixed.jsonl", R"({"prompt": "Hi", "chosen": "a", "rejected": "b"})",
                    "a preference {\"chosen\", \"rejected\"} record in a file whose first record"));
  EXPECT_TRUE(fails("both.jsonl", R"({"prompt": "Hi", "chosen": "a", "completion": "b", "label": true})",
                    "holds both preference keys"));
  // A pairs file with an unpaired record further down.
  std::string p = write("mixed2.jsonl", std::string(kToyPairs) + ok);
  EXPECT_TRUE(throws_with([&] { read_kto_jsonl(p); }, p + ":5: a unpaired {\"completion\", \"label\"} record"));
  // Too long for the context: the source, as tokenize_pairs.
  nn::Tokenizer tok;
  std::string q = write("long.jsonl", ok);
  EXPECT_TRUE(throws_with([&] { read_kto_examples(q, tok, 8); }, q + ":1: prompt + desirable completion is"));
  EXPECT_TRUE(throws_with([&] { read_kto_examples(q, tok, 3); }, q + ":1: the prompt is"));
}

// ---- the trainer ----

nn::GPTConfig tiny_config(const nn::Tokenizer &tok) {
  return nn::GPTConfig{.vocab = tok.vocab_size(), .ctx = 64, .d_model = 32, .n_layer = 2, .n_head = 2};
}

KTOConfig fast(int64_t steps) {
  KTOConfig o;
  o.batch_size = 8;
  o.optim = {.lr = 2e-3, .weight_decay = 0, .warmup = 0, .schedule = "constant"};
  o.loop.steps = steps;
  return o;
}

TEST(KTOTrainer, DesirableRewardsRiseAboveZeroAndUndesirableFallBelow) {
  manual_seed(11);
  nn::Tokenizer tok;
  nn::GPT policy(tiny_config(tok));
  auto ref = frozen_copy(policy);
  KTOTrainer tr(policy, *ref, read_kto_examples(write("train.jsonl", kToyPairs), tok, 64), tok.pad_id(), fast(25));
  EXPECT_EQ(tr.weight_warning(), "");  // 4 and 4
  std::vector<size_t> all = {0, 1, 2, 3, 4, 5, 6, 7};
  Metrics first = tr.evaluate(all);
  EXPECT_EQ(first["rewards/chosen"], 0.0);  // policy == reference
  EXPECT_EQ(first["rewards/rejected"], 0.0);
  EXPECT_EQ(first["kl"], 0.0);
  EXPECT_NEAR(first["loss"], 0.5, 1e-6);
  EXPECT_EQ(first["count/chosen"], 4);
  EXPECT_EQ(first["count/rejected"], 4);
  for (int s = 0; s < 25; ++s) tr.step(all);
  Metrics last = tr.evaluate(all);
  EXPECT_GT(last["rewards/chosen"], 0.0);  // log pi(desirable) rose relative to the reference
  EXPECT_LT(last["rewards/rejected"], 0.0);
  EXPECT_GT(last["logps/chosen"], first["logps/chosen"]);
  EXPECT_LT(last["logps/rejected"], first["logps/rejected"]);
  EXPECT_LT(last["loss"], first["loss"]);
  EXPECT_GE(last["kl"], 0.0);
  EXPECT_EQ(tr.steps_done(), 25);
  // Each desirable completion's own implicit reward, not just the mean.
  for (size_t i = 0; i < all.size(); i += 2) {
    Metrics one = tr.evaluate({i, i + 1});
    EXPECT_GT(one["rewards/chosen"], 0.0) << i;
    EXPECT_LT(one["rewards/rejected"], 0.0) << i;
  }
}

TEST(KTOTrainer, BatchOfOneIsAClearError) {
  nn::Tokenizer tok;
  nn::GPT policy(tiny_config(tok));
  auto ref = frozen_copy(policy);
  auto ex = read_kto_examples(write("b1.jsonl", kToyPairs), tok, 64);
  KTOConfig o = fast(1);
  o.batch_size = 1;
  EXPECT_TRUE(throws_with([&] { KTOTrainer(policy, *ref, ex, tok.pad_id(), o); }, "kto: batch_size must be >= 2"));
  KTOTrainer tr(policy, *ref, ex, tok.pad_id(), fast(1));
  EXPECT_TRUE(throws_with([&] { tr.step({3}); }, "needs batch_size >= 2"));
  EXPECT_TRUE(throws_with([&] { KTOTrainer(policy, *ref, {ex[0]}, tok.pad_id(), fast(1)); }, "needs at least 2"));
}

// The command: a tiny saved policy, no oracle.
Config kto_command(const std::string &data, const std::string &out) {
  static const std::string policy = [] {
    manual_seed(5);
    nn::Tokenizer tok;
    nn::GPT gpt(tiny_config(tok));
    std::string dir = (scratch() / "sft").string();
    save_run(dir, gpt, tok, nlohmann::json::object());
    return dir;
  }();
  Config c(find_stage("kto").schema());
  for (const std::string &kv : {"policy=" + policy, "data=" + data, "out=" + out, std::string("world="),
                                 std::string("eval_prompts="), std::string("steps=2"), std::string("batch_size=4")})
    c.set(kv);
  return c;
}

TEST(KTOTrainer, TheStageTrainsAndWritesTheUnpairedFile) {
  Config c = kto_command(write("stage.jsonl", kToyPairs), (scratch() / "run").string());
  const std::string unpaired = (scratch() / "unpaired_out.jsonl").string();
  c.set("unpaired_out=" + unpaired);
  StageResult r = find_stage("kto").run(c, true);
  EXPECT_NE(r.message.find("model.safetensors"), std::string::npos) << r.message;
  EXPECT_TRUE(fs::exists(scratch() / "run" / "metrics.jsonl"));
  EXPECT_EQ(read_unpaired_jsonl(unpaired).size(), 8u);
}

TEST(KTOTrainer, ANonBooleanLabelThroughTheStageNamesFileAndLine) {
  std::string p = write("stage_bad.jsonl", R"({"prompt": "Hi", "completion": "Hello!", "label": true})" "\n"
                                           R"({"prompt": "Hi", "completion": "Go", "label": 0})" "\n");
  Config c = kto_command(p, (scratch() / "run_bad").string());
  EXPECT_TRUE(throws_with([&] { find_stage("kto").run(c, true); }, p + ":2: field \"label\" must be a JSON boolean"));
  Config one = kto_command(write("stage_ok.jsonl", kToyPairs), (scratch() / "run_b1").string());
  EXPECT_TRUE(throws_with([&] { one.set("batch_size=1"); }, "batch_size"));
}

}  // namespace
