// The stage registry: one entry per config-driven command, every config key of every command
// reachable as a --key flag with its default, the pipeline's keys built from the stages' own.
#include <gtest/gtest.h>

#include <set>

#include "rlhf/config.h"
#include "rlhf/stages.h"
#include "test_util.h"

using namespace nanorlhf::rlhf;

TEST(Stages, TheRegistryHoldsEveryConfigDrivenCommandOnce) {
  std::set<std::string> names;
  for (const Stage &st : stages()) {
    EXPECT_TRUE(names.insert(st.name).second) << st.name << " twice";
    EXPECT_FALSE(st.help.empty()) << st.name;
    EXPECT_TRUE(st.run) << st.name;
  }
  for (const char *n : {"world", "pretrain", "sft", "preferences", "rm", "reinforce", "ppo", "dpo", "kto", "raft",
                        "online_dpo", "eval", "pipeline"})
    EXPECT_TRUE(names.count(n)) << n;
  EXPECT_TRUE(nr_test::throws_with([] { find_stage("nope"); }, "unknown stage 'nope'; valid: world, pretrain"));
}

TEST(Stages, EveryKeyOfEveryCommandIsAFlag) {
  for (const Stage &st : stages()) {
    Config c(st.schema());
    for (const auto &key : c.keys()) {
      const auto &def = c.key_info(key).default_value;
      const std::string value = def.is_string() ? def.get<std::string>() : def.dump();
      SCOPED_TRACE(st.name + " --" + key + " " + value);
      if (value.empty()) {
        EXPECT_NO_THROW(apply_key_flags(c, {"--" + key + "="}, st.name));  // an empty string takes --key=
      } else {
        EXPECT_NO_THROW(apply_key_flags(c, {"--" + key, value}, st.name));
      }
      EXPECT_EQ(c.get(key), def);
    }
  }
}

TEST(Stages, ThePipelineTakesEachStagesKeysUnderItsName) {
  Config pipe(find_stage("pipeline").schema());
  for (const char *stage : {"pretrain", "sft", "preferences", "rm", "reinforce", "ppo", "dpo", "eval"}) {
    Config own(find_stage(stage).schema());
    for (const char *key : {"seed", "steps", "lr", "beta", "k", "max_new_tokens"})
      if (own.has(key) && std::string(stage) != "preferences") EXPECT_TRUE(pipe.has(std::string(stage) + "." + key)) << stage << "." << key;
  }
  EXPECT_TRUE(pipe.has("world.n_sft"));
  EXPECT_FALSE(pipe.has("dpo.policy"));  // wired by the pipeline from the SFT stage
  EXPECT_EQ(pipe.integer("ppo.steps"), 60);  // the demo's own default
  EXPECT_EQ(Config(find_stage("ppo").schema()).integer("steps"), 30);
}
