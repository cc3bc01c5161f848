// `nanorlhf compare`: each method's settings land in its keys, the statistics over seeds are the
// textbook ones, best-of-n's KL is the analytic value, and bad methods or seeds are clear errors
// before anything is written.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

#include "rlhf/config.h"
#include "rlhf/evaluation.h"
#include "rlhf/objectives.h"
#include "rlhf/stages.h"
#include "rlhf/trainers/compare.h"
#include "test_util.h"

using namespace nanorlhf::rlhf;

TEST(Compare, EveryMethodTakesItsStageKeysWithTheDemosAndItsOwnDefaults) {
  Config c(find_stage("compare").schema());
  EXPECT_EQ(c.str("seeds"), "1,2,3");
  EXPECT_EQ(c.num("cdpo.label_smoothing"), 0.2);
  EXPECT_EQ(c.num("dpo.label_smoothing"), 0.0);       // plain DPO, unlike the pipeline's cDPO
  EXPECT_EQ(c.str("ipo.loss_type"), "ipo");
  EXPECT_EQ(c.integer("reinforce.steps"), 80);        // the demo's REINFORCE
  EXPECT_EQ(c.integer("rloo.steps"), 80);             // the same budget with the RLOO baseline
  EXPECT_EQ(c.integer("rloo.rloo_k"), 4);
  EXPECT_EQ(c.integer("ppo.steps"), 60);              // the demo's PPO
  EXPECT_EQ(c.num("grpo.beta"), 0.04);
  EXPECT_FALSE(c.has("ppo.policy"));                  // wired to the shared SFT model
  EXPECT_FALSE(c.has("dpo.seed"));                    // set per run from `seeds`
  EXPECT_FALSE(c.has("best_of_n.steps"));             // trains nothing
  for (const auto &m : compare_methods())
    if (!m.stage.empty()) EXPECT_NO_THROW(find_stage(m.stage)) << m.name;
}

TEST(Compare, MeanAndStandardErrorOverSeeds) {
  // 1, 2, 3, 4: mean 2.5, sample sd sqrt(5/3), s.e. sd / 2
  EXPECT_DOUBLE_EQ(mean_of({1, 2, 3, 4}), 2.5);
  EXPECT_NEAR(standard_error_of({1, 2, 3, 4}), std::sqrt(5.0 / 3) / 2, 1e-12);
  EXPECT_TRUE(std::isnan(standard_error_of({0.7})));  // one seed: no spread to measure
}

TEST(Compare, BestOfNsKlIsAnalytic) {
  EXPECT_DOUBLE_EQ(best_of_n_kl(1), 0.0);
  EXPECT_NEAR(best_of_n_kl(2), std::log(2.0) - 0.5, 1e-12);
  EXPECT_NEAR(best_of_n_kl(8), std::log(8.0) - 7.0 / 8, 1e-12);
  EXPECT_TRUE(nr_test::throws_with([] { best_of_n_kl(0); }, "n must be >= 1"));
}

TEST(Compare, BadMethodsAndSeedsAreErrorsBeforeAnythingIsWritten) {
  const std::string out = (std::filesystem::temp_directory_path() / "nanorlhf_test_compare_never").string();
  std::filesystem::remove_all(out);
  auto run = [&](nlohmann::json set) {
    Config c(find_stage("compare").schema());
    set["out"] = out, set["from"] = out + "/from";
    c.merge(set);
    find_stage("compare").run(c, true);
  };
  EXPECT_TRUE(nr_test::throws_with([&] { run({{"methods", "dpo,gpt4"}}); },
                                   "compare: unknown method 'gpt4' in methods; valid: reinforce, rloo, ppo"));
  EXPECT_TRUE(nr_test::throws_with([&] { run({{"seeds", "1,x"}}); }, "seeds must be non-negative integers"));
  EXPECT_FALSE(std::filesystem::exists(out));
}
