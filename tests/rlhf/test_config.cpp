// Tests of the config system: defaults, --set parsing and types, ranges, unknown keys with
// suggestions, nested/flat files, all-or-nothing merges, resolved() round trip, schema checks.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "rlhf/config.h"
#include "rlhf/options.h"

using nanorlhf::rlhf::Config;
using nanorlhf::rlhf::ConfigKey;
using nlohmann::json;

namespace {

std::vector<ConfigKey> schema() {
  return {
      {"seed", 1, "random seed", 0.0, std::nullopt},
      {"run_dir", "runs/default", "where the run writes", std::nullopt, std::nullopt},
      {"ppo.beta", 0.05, "KL penalty coefficient", 0.0, std::nullopt},
      {"ppo.clip", 0.2, "PPO clip range", 0.0, 1.0, true},
      {"ppo.epochs", 4, "optimisation epochs per batch", 1.0, 100.0},
      {"optim.lr", 3e-4, "learning rate", 0.0, std::nullopt, true},
      {"eval.enabled", true, "run evaluation", std::nullopt, std::nullopt},
      {"model.dims", json::array({64, 64}), "hidden sizes", std::nullopt, std::nullopt},
  };
}

// Runs fn and checks it throws E with every needle in the message.
template <typename E = std::invalid_argument, typename Fn>
void expect_error(Fn fn, std::initializer_list<std::string> needles) {
  try {
    fn();
    ADD_FAILURE() << "expected an exception";
  } catch (const E& e) {
    std::string msg = e.what();
    for (const auto& n : needles) EXPECT_NE(msg.find(n), std::string::npos) << "missing '" << n << "' in: " << msg;
  }
}

std::string write_temp(const std::string& name, const std::string& text) {
  auto p = std::filesystem::temp_directory_path() / ("nanorlhf_cfg_" + std::to_string(::getpid()) + "_" + name);
  std::ofstream(p) << text;
  return p.string();
}

}  // namespace

TEST(Config, DefaultsAndTypedGetters) {
  Config c(schema());
  EXPECT_EQ(c.integer("seed"), 1);
  EXPECT_EQ(c.str("run_dir"), "runs/default");
  EXPECT_DOUBLE_EQ(c.num("ppo.beta"), 0.05);
  EXPECT_EQ(c.integer("ppo.epochs"), 4);
  EXPECT_TRUE(c.flag("eval.enabled"));
  EXPECT_EQ(c.get("model.dims"), json::array({64, 64}));
  EXPECT_EQ(c.keys().size(), 8u);
  EXPECT_TRUE(c.has("ppo.clip"));
  EXPECT_FALSE(c.has("ppo"));
  EXPECT_THROW(c.num("run_dir"), std::invalid_argument);
  EXPECT_THROW(c.flag("seed"), std::invalid_argument);
}

TEST(Config, SetParsesValues) {
  Config c(schema());
  c.set("ppo.beta=0.1");
  EXPECT_DOUBLE_EQ(c.num("ppo.beta"), 0.1);
  c.set("ppo.beta=1");  // an integer where a number is expected
  EXPECT_DOUBLE_EQ(c.num("ppo.beta"), 1.0);
  EXPECT_TRUE(c.get("ppo.beta").is_number_float());
  c.set("seed=1e3");  // integral float accepted for an integer key
  EXPECT_EQ(c.integer("seed"), 1000);
  c.set("eval.enabled=false");
  EXPECT_FALSE(c.flag("eval.enabled"));
  c.set("model.dims=[128, 32, 8]");
  EXPECT_EQ(c.get("model.dims"), json::array({128, 32, 8}));
  c.set("run_dir=runs/ppo 1");
  EXPECT_EQ(c.str("run_dir"), "runs/ppo 1");
  c.set("run_dir=007");  // string keys keep the text as is
  EXPECT_EQ(c.str("run_dir"), "007");
  c.set("run_dir=\"quoted\"");
  EXPECT_EQ(c.str("run_dir"), "quoted");
  c.set("run_dir=a=b");  // only the first '=' splits
  EXPECT_EQ(c.str("run_dir"), "a=b");
}

TEST(Config, TypeErrors) {
  Config c(schema());
  expect_error([&] { c.set("ppo.beta=abc"); }, {"config key 'ppo.beta' expects a number, got \"abc\""});
  expect_error([&] { c.set("ppo.epochs=2.5"); }, {"config key 'ppo.epochs' expects an integer, got 2.5"});
  expect_error([&] { c.set("eval.enabled=yes"); }, {"config key 'eval.enabled' expects true or false, got \"yes\""});
  expect_error([&] { c.set("model.dims=5"); }, {"expects a list, got 5"});
  expect_error([&] { c.merge(json{{"run_dir", 5}}); }, {"config key 'run_dir' expects a string, got 5"});
  expect_error([&] { c.set("ppo.beta"); }, {"expects key=value", "'ppo.beta'"});
  EXPECT_DOUBLE_EQ(c.num("ppo.beta"), 0.05);  // failed sets change nothing
}

TEST(Config, RangeErrors) {
  Config c(schema());
  expect_error([&] { c.set("ppo.beta=-1"); }, {"config key 'ppo.beta' must be >= 0, got -1"});
  expect_error([&] { c.set("optim.lr=0"); }, {"config key 'optim.lr' must be > 0, got 0"});
  expect_error([&] { c.set("ppo.clip=1.5"); }, {"config key 'ppo.clip' must be <= 1, got 1.5"});
  expect_error([&] { c.set("ppo.epochs=0"); }, {"must be >= 1, got 0"});
  c.set("ppo.beta=0");  // inclusive bound
  c.set("ppo.clip=1");
  EXPECT_DOUBLE_EQ(c.num("ppo.clip"), 1.0);
}

TEST(Config, UnknownKeyListsValidKeysAndSuggests) {
  Config c(schema());
  expect_error([&] { c.set("ppo.betta=0.1"); },
               {"unknown config key 'ppo.betta'", "did you mean 'ppo.beta'?", "valid keys: seed, run_dir, ppo.beta, ppo.clip"});
  expect_error([&] { c.set("beta=0.1"); }, {"did you mean 'ppo.beta'?"});
  expect_error([&] { c.get("completely.different"); }, {"unknown config key 'completely.different'; valid keys:"});
  expect_error([&] { c.merge(json{{"ppo", {{"bta", 1}}}}); }, {"unknown config key 'ppo.bta'"});
}

TEST(Config, MergeNestedAndFlatAllOrNothing) {
  Config c(schema());
  c.merge(json{{"ppo", {{"beta", 0.2}, {"clip", 0.3}}}, {"optim.lr", 1e-3}});
  EXPECT_DOUBLE_EQ(c.num("ppo.beta"), 0.2);
  EXPECT_DOUBLE_EQ(c.num("ppo.clip"), 0.3);
  EXPECT_DOUBLE_EQ(c.num("optim.lr"), 1e-3);
  EXPECT_THROW(c.merge(json{{"ppo.beta", 0.9}, {"nope", 1}}), std::invalid_argument);
  EXPECT_DOUBLE_EQ(c.num("ppo.beta"), 0.2);  // unchanged: the merge was rejected whole
  EXPECT_THROW(c.merge(json::array({1})), std::invalid_argument);
}

TEST(Config, ResolvedIsNestedAndRoundTrips) {
  Config c(schema());
  c.set("ppo.beta=0.3");
  c.set("seed=7");
  json r = c.resolved();
  EXPECT_EQ(r["ppo"]["beta"], 0.3);
  EXPECT_EQ(r["seed"], 7);
  EXPECT_EQ(r["model"]["dims"], json::array({64, 64}));
  EXPECT_EQ(r["eval"]["enabled"], true);
  Config d(schema());
  d.merge(r);
  EXPECT_EQ(d.resolved(), r);
}

// `--set key=<bytes that are not UTF-8>`: a clear error, not nlohmann's type_error from dump()
// (found by fuzz_config).
TEST(Config, SetWithInvalidUtf8IsAClearError) {
  Config c(schema());
  expect_error([&] { c.set("ppo.beta=0.1\xF8"); }, {"ppo.beta", "expects"});
}

TEST(Config, LoadFile) {
  Config c(schema());
  auto p = write_temp("ok.json", R"({"ppo": {"beta": 0.5, "epochs": 2}, "run_dir": "runs/x"})");
  c.load_file(p);
  EXPECT_DOUBLE_EQ(c.num("ppo.beta"), 0.5);
  EXPECT_EQ(c.integer("ppo.epochs"), 2);
  EXPECT_EQ(c.str("run_dir"), "runs/x");

  auto bad = write_temp("bad.json", R"({"ppo": {"beta": 0.5,}})");
  expect_error<std::runtime_error>([&] { c.load_file(bad); }, {bad, "invalid JSON"});
  auto huge = write_temp("huge.json", R"({"ppo": {"beta": 1e999}})");  // out_of_range, not parse_error (fuzz_config)
  expect_error<std::runtime_error>([&] { c.load_file(huge); }, {huge, "invalid JSON"});
  auto unknown = write_temp("unknown.json", R"({"ppo": {"betta": 0.5}})");
  expect_error([&] { c.load_file(unknown); }, {unknown, "unknown config key 'ppo.betta'"});
  auto range = write_temp("range.json", R"({"ppo.beta": -2})");
  expect_error([&] { c.load_file(range); }, {range, "must be >= 0, got -2"});
  expect_error<std::runtime_error>([&] { c.load_file(p + ".missing"); }, {p + ".missing"});
  for (const auto& f : {p, bad, huge, unknown, range}) std::filesystem::remove(f);
}

TEST(Config, HelpText) {
  Config c(schema());
  std::string h = c.help_text();
  EXPECT_NE(h.find("ppo.beta"), std::string::npos);
  EXPECT_NE(h.find("KL penalty coefficient"), std::string::npos);
  EXPECT_NE(h.find("number, default 0.05, >= 0"), std::string::npos) << h;
  EXPECT_NE(h.find("number, default 0.2, > 0, <= 1"), std::string::npos) << h;
  EXPECT_NE(h.find("> 0"), std::string::npos) << h;
  EXPECT_NE(h.find("integer, default 4"), std::string::npos) << h;
}

TEST(Config, SchemaIsChecked) {
  EXPECT_THROW(Config({{"a", 1, ""}, {"a", 2, ""}}), std::invalid_argument);
  EXPECT_THROW(Config({{"a", 1, ""}, {"a.b", 2, ""}}), std::invalid_argument);
  EXPECT_THROW(Config({{"a", json::object(), ""}}), std::invalid_argument);
  EXPECT_THROW(Config({{"a", -1.0, "", 0.0, std::nullopt}}), std::invalid_argument);
  EXPECT_THROW(Config({{"bad name", 1, ""}}), std::invalid_argument);
  EXPECT_THROW(Config({{"s", "x", "", 0.0, std::nullopt}}), std::invalid_argument);
}

// ---- option tables: the struct's initialisers are the defaults, read() fills the members ----

namespace {

struct Inner {
  double lr = 1e-3;
  int64_t warmup = 5;
};
struct Opts {
  double beta = 0.1;
  std::string loss = "sigmoid";
  bool normalize = true;
  uint64_t seed = 3;
  Inner optim{.lr = 5e-4};  // the outer struct's default wins over Inner's
  void validate() const {
    if (beta > 10) throw std::invalid_argument("beta too large");
  }
};

const nanorlhf::rlhf::OptionTable<Opts> &opts_table() {
  using nanorlhf::rlhf::Range;
  static const nanorlhf::rlhf::OptionTable<Opts> t = [] {
    nanorlhf::rlhf::OptionTable<Inner> inner;
    inner.add("lr", &Inner::lr, "peak lr", Range::above(0)).add("warmup", &Inner::warmup, "", Range::at_least(0));
    nanorlhf::rlhf::OptionTable<Opts> t;
    t.add("beta", &Opts::beta, "KL strength", Range::at_least(0))
        .add("loss", &Opts::loss, "the loss", {}, {"sigmoid", "ipo"})
        .add("normalize", &Opts::normalize, "normalise")
        .add("seed", &Opts::seed, "seed", Range::at_least(0))
        .include(&Opts::optim, inner, "optim.");
    return t;
  }();
  return t;
}

}  // namespace

TEST(OptionTable, SchemaTakesTheStructsDefaultsAndReadFillsTheMembers) {
  Config c(opts_table().schema());
  EXPECT_DOUBLE_EQ(c.num("beta"), 0.1);
  EXPECT_EQ(c.str("loss"), "sigmoid");
  EXPECT_DOUBLE_EQ(c.num("optim.lr"), 5e-4);  // Opts{}.optim.lr, not Inner{}.lr
  EXPECT_EQ(c.integer("optim.warmup"), 5);
  EXPECT_EQ(c.key_info("loss").choices, (std::vector<std::string>{"sigmoid", "ipo"}));
  c.set("beta=0.3");
  c.set("loss=ipo");
  c.set("optim.lr=0.01");
  c.set("normalize=false");
  Opts o = opts_table().read(c);
  EXPECT_DOUBLE_EQ(o.beta, 0.3);
  EXPECT_EQ(o.loss, "ipo");
  EXPECT_DOUBLE_EQ(o.optim.lr, 0.01);
  EXPECT_FALSE(o.normalize);
  EXPECT_EQ(o.seed, 3u);
  // resolved() is the nested config.json of a struct; it merges back to the same options.
  json r = opts_table().resolved(o);
  EXPECT_DOUBLE_EQ(r["optim"]["lr"].get<double>(), 0.01);
  Config d(opts_table().schema());
  d.merge(r);
  EXPECT_DOUBLE_EQ(opts_table().read(d).optim.lr, 0.01);
}

TEST(OptionTable, ChoicesRangesAndValidateAreChecked) {
  Config c(opts_table().schema());
  expect_error([&] { c.set("loss=kto"); }, {"'loss'", "one of sigmoid, ipo", "kto"});
  expect_error([&] { c.set("optim.lr=0"); }, {"'optim.lr'", "> 0"});
  c.set("beta=11");
  expect_error([&] { opts_table().read(c); }, {"beta too large"});
  EXPECT_NE(c.help_text().find("one of sigmoid, ipo"), std::string::npos);
}

// ---- every config key is a flag: --key value, --key=value, a bare boolean --flag ----

TEST(KeyFlags, FlagsSetKeysAfterConfigFileAndSet) {
  Config c(schema());
  c.load_file(write_temp("flags.json", R"({"seed": 5, "ppo": {"beta": 0.5}})"));
  c.set("ppo.epochs=8");
  nanorlhf::rlhf::apply_key_flags(c, {"--ppo.beta", "0.25", "--run_dir=runs/x", "--seed", "-0"}, "test");
  EXPECT_DOUBLE_EQ(c.num("ppo.beta"), 0.25);  // the flag wins over the file
  EXPECT_EQ(c.integer("ppo.epochs"), 8);      // --set kept
  EXPECT_EQ(c.str("run_dir"), "runs/x");
  EXPECT_EQ(c.integer("seed"), 0);
  c.set("eval.enabled=false");
  nanorlhf::rlhf::apply_key_flags(c, {"--eval.enabled"}, "test");  // a bare boolean flag is true
  EXPECT_TRUE(c.flag("eval.enabled"));
  Config dashes({{"max_new_tokens", 24, ""}});
  nanorlhf::rlhf::apply_key_flags(dashes, {"--max-new-tokens", "7"}, "test");
  EXPECT_EQ(dashes.integer("max_new_tokens"), 7);
}

TEST(KeyFlags, ATypoListsTheClosestKeysAndBadValuesNameTheKey) {
  Config c(schema());
  expect_error([&] { nanorlhf::rlhf::apply_key_flags(c, {"--sed", "3"}, "ppo"); },
               {"unknown option '--sed'", "nanorlhf ppo", "--seed", "--list-keys"});
  expect_error([&] { nanorlhf::rlhf::apply_key_flags(c, {"--ppo.clip", "2"}, "ppo"); }, {"'ppo.clip'", "<= 1"});
  expect_error([&] { nanorlhf::rlhf::apply_key_flags(c, {"--seed"}, "ppo"); }, {"'--seed' needs a value"});
  expect_error([&] { nanorlhf::rlhf::apply_key_flags(c, {"stray"}, "ppo"); }, {"unexpected argument 'stray'"});
}
