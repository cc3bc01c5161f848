// Hugging Face GPT-2 checkpoints: nn::GPT loaded from the fixture of make_hf_gpt2_fixture.py
// (GPT-2's layout, written by an independent plain-PyTorch GPT-2) gives its logits, loss and
// gradients; export then import is the identity; malformed folders give errors naming the tensor
// or key and both shapes; half-precision tensors widen exactly.
#include <bit>
#include <cmath>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <limits>

#include <unistd.h>

#include "nn/atomic_file.h"
#include "nn/checkpoint.h"
#include "nn/half_float.h"
#include "nn/hf_gpt2.h"
#include "nn/safetensors.h"
#include "test_util.h"

using namespace nanorlhf;
using namespace nr_test;
namespace fs = std::filesystem;

namespace {

fs::path fixture_dir() {
  const char *env = std::getenv("NANORLHF_SOURCE_DIR");
  return (env ? fs::path(env) : fs::path(".")) / "tests/nn/fixtures/hf_gpt2";
}

struct TempDir {
  fs::path path;
  TempDir() {
    path = fs::temp_directory_path() / ("nr_hfgpt2_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(path);
    fs::create_directories(path);
  }
  ~TempDir() { fs::remove_all(path); }
  std::string str() const { return path.string(); }
};

// A copy of the fixture's config.json and model.safetensors in `dir`, with `edit` applied to the
// tensors and `config_edit` to the config.
void write_variant(const TempDir &dir, const std::function<void(std::map<std::string, nn::RawTensor> &)> &edit,
                   const std::function<void(nlohmann::json &)> &config_edit = nullptr) {
  nn::SafetensorsFile st = nn::load_safetensors((fixture_dir() / "model.safetensors").string());
  if (edit) edit(st.tensors);
  nn::save_safetensors((dir.path / "model.safetensors").string(), st.tensors, st.metadata);
  nlohmann::json cfg = nlohmann::json::parse(nn::read_file((fixture_dir() / "config.json").string()));
  if (config_edit) config_edit(cfg);
  nn::write_file_atomic((dir.path / "config.json").string(), cfg.dump(2));
}

// [r, c] row-major -> [c, r], as doubles
std::vector<double> transposed(const Tensor &t) {
  const int64_t r = t.shape()[0], c = t.shape()[1];
  std::vector<double> v = t.to_vector<double>(), out(v.size());
  for (int64_t i = 0; i < r; ++i)
    for (int64_t j = 0; j < c; ++j) out[size_t(j * r + i)] = v[size_t(i * c + j)];
  return out;
}

double max_abs(const std::vector<double> &v) {
  double m = 0;
  for (double x : v) m = std::max(m, std::abs(x));
  return m;
}

}  // namespace

TEST(HfGpt2, ConfigBecomesOurs) {
  auto model = nn::load_hf_gpt2(fixture_dir().string());
  const nn::GPTConfig &c = model->config;
  EXPECT_EQ(c.vocab, 61);
  EXPECT_EQ(c.ctx, 16);
  EXPECT_EQ(c.d_model, 32);
  EXPECT_EQ(c.n_layer, 2);
  EXPECT_EQ(c.n_head, 4);
  EXPECT_TRUE(c.tie_weights);  // tie_word_embeddings defaults to true
  EXPECT_DOUBLE_EQ(c.layer_norm_eps, 1e-5);
  EXPECT_DOUBLE_EQ(c.dropout, 0.1);
}

TEST(HfGpt2, MatchesTheReferenceLogitsLossAndGradients) {
  auto model = nn::load_hf_gpt2(fixture_dir().string());
  model->eval();  // the fixture's config has dropout 0.1; the reference has none
  std::map<std::string, Tensor> ref = nn::load_tensors((fixture_dir() / "reference.safetensors").string());
  const Tensor ids = ref.at("input_ids");
  const int64_t B = ids.shape()[0], T = ids.shape()[1], V = model->config.vocab;

  Tensor logits = model->forward(ids);
  ASSERT_EQ(logits.shape(), ref.at("logits").shape());
  const double logit_diff = max_abs_diff(logits, ref.at("logits"));
  EXPECT_LE(logit_diff, 1e-4);

  // Mean next-token cross-entropy: position t predicts token t + 1.
  Tensor loss = cross_entropy(logits.narrow(1, 0, T - 1).reshape({B * (T - 1), V}),
                              ids.narrow(1, 1, T - 1).contiguous().reshape({B * (T - 1)}));
  const double ref_loss = ref.at("loss").item();
  EXPECT_TRUE(isclose(loss.item(), ref_loss, {.atol = 0, .rtol = 1e-5}));
  loss.backward();

  // Gradients are float32 sums over B * T = 32 positions of products up to 4d = 128 wide: the error
  // grows like sqrt(terms) float32 ulps (6e-8) of the gradient's scale, ~1e-6 of its largest element
  // (measured: 5e-7). Tolerance: 1e-5 of that largest element absolute plus 1e-4 relative.
  struct Case {
    const char *hf;
    Tensor grad;
    bool conv1d;
  };
  const std::vector<Case> cases = {
      {"wte.weight", model->wte->weight.grad(), false},  // tied: embedding and head gradients summed
      {"h.0.attn.c_attn.weight", model->blocks[0]->attn->qkv->weight.grad(), true},
      {"h.1.mlp.c_proj.weight", model->blocks[1]->mlp->proj->weight.grad(), true},
      {"ln_f.weight", model->ln_f->weight.grad(), false}};
  std::cout << "max |logits - reference| " << logit_diff << "; loss " << loss.item() << " vs " << ref_loss
            << " (|diff| " << std::abs(loss.item() - ref_loss) << ")\n";
  for (const Case &c : cases) {
    ASSERT_TRUE(c.grad.defined()) << c.hf;
    const std::vector<double> want = ref.at(std::string("grad.") + c.hf).to_vector<double>();
    const std::vector<double> got = c.conv1d ? transposed(c.grad) : c.grad.to_vector<double>();
    const double scale = max_abs(want);
    EXPECT_TRUE(allclose(got, want, {.atol = 1e-5 * scale, .rtol = 1e-4})) << c.hf;
    std::cout << "max |grad " << c.hf << " - reference| " << max_abs_diff(got, want) << " (largest |grad| " << scale
              << ")\n";
  }
}

TEST(HfGpt2, ExportThenImportIsTheIdentity) {
  for (bool tied : {true, false}) {
    TempDir tmp;
    manual_seed(7);
    nn::GPTConfig cfg{.vocab = 23, .ctx = 12, .d_model = 16, .n_layer = 2, .n_head = 2, .dropout = 0.0,
                      .tie_weights = tied, .layer_norm_eps = 1e-6};
    nn::GPT a(cfg);
    nn::save_hf_gpt2(tmp.str(), a);

    nn::SafetensorsFile st = nn::load_safetensors((tmp.path / "model.safetensors").string());
    EXPECT_EQ(st.metadata.at("format"), "pt");
    EXPECT_EQ(st.tensors.count("lm_head.weight"), tied ? 0u : 1u);
    ASSERT_TRUE(st.tensors.count("h.1.mlp.c_fc.weight"));
    EXPECT_EQ(st.tensors.at("h.1.mlp.c_fc.weight").shape, (std::vector<int64_t>{16, 64}));  // Conv1D (in, out)
    EXPECT_EQ(st.tensors.at("h.0.attn.c_attn.weight").shape, (std::vector<int64_t>{16, 48}));
    for (const auto &[name, t] : st.tensors) EXPECT_EQ(name.find("transformer."), std::string::npos) << name;

    nlohmann::json j = nlohmann::json::parse(nn::read_file((tmp.path / "config.json").string()));
    EXPECT_EQ(j["model_type"], "gpt2");
    EXPECT_EQ(j["architectures"], nlohmann::json::array({"GPT2LMHeadModel"}));
    EXPECT_EQ(j["n_embd"], 16);
    EXPECT_EQ(j["n_positions"], 12);
    EXPECT_EQ(j["n_ctx"], 12);
    EXPECT_EQ(j["vocab_size"], 23);
    EXPECT_EQ(j["activation_function"], "gelu_new");
    EXPECT_EQ(j["tie_word_embeddings"], tied);
    EXPECT_EQ(j["eos_token_id"], 22);
    EXPECT_TRUE(nn::is_hf_gpt2_folder(tmp.str()));

    auto b = nn::load_hf_gpt2(tmp.str());
    EXPECT_EQ(b->config.to_json(), cfg.to_json());
    auto pa = a.named_parameters(), pb = b->named_parameters();
    ASSERT_EQ(pa.size(), pb.size());
    for (size_t i = 0; i < pa.size(); ++i) {
      EXPECT_EQ(pa[i].first, pb[i].first);
      EXPECT_EQ(pa[i].second.to_vector<float>(), pb[i].second.to_vector<float>()) << pa[i].first;  // bit for bit
    }
  }
}

TEST(HfGpt2, Gpt2VocabularyGetsEndOfTextIds) {
  nlohmann::json j = nn::hf_config_from_gpt({.vocab = 50257, .ctx = 1024, .d_model = 768, .n_layer = 12, .n_head = 12});
  EXPECT_EQ(j["bos_token_id"], 50256);
  EXPECT_EQ(j["eos_token_id"], 50256);
}

TEST(HfGpt2, TellsHuggingFaceFoldersFromRunDirectories) {
  EXPECT_TRUE(nn::is_hf_gpt2_folder(fixture_dir().string()));
  TempDir tmp;
  EXPECT_FALSE(nn::is_hf_gpt2_folder(tmp.str()));  // no config.json
  nn::write_file_atomic((tmp.path / "config.json").string(), R"({"model": {"d_model": 8}, "lr": 0.001})");
  EXPECT_FALSE(nn::is_hf_gpt2_folder(tmp.str()));  // a nanorlhf run directory
  nn::write_file_atomic((tmp.path / "config.json").string(), R"({"model_type": "llama", "hidden_size": 8})");
  EXPECT_FALSE(nn::is_hf_gpt2_folder(tmp.str()));
  nn::write_file_atomic((tmp.path / "config.json").string(), R"({"n_embd": 8, "n_layer": 1})");
  EXPECT_TRUE(nn::is_hf_gpt2_folder(tmp.str()));  // old configs without model_type
}

TEST(HfGpt2, ReadsTensorsWithoutThePrefixAndWithoutMaskBuffers) {
  TempDir tmp;
  write_variant(tmp, [](auto &t) {
    std::map<std::string, nn::RawTensor> bare;
    for (auto &[name, r] : t)
      if (name.find(".attn.bias") == std::string::npos && name.find("masked_bias") == std::string::npos)
        bare.emplace(name.rfind("transformer.", 0) == 0 ? name.substr(12) : name, r);
    bare.erase("lm_head.weight");
    t = bare;
  });
  auto a = nn::load_hf_gpt2(fixture_dir().string()), b = nn::load_hf_gpt2(tmp.str());
  EXPECT_EQ(a->wte->weight.to_vector<float>(), b->wte->weight.to_vector<float>());
  EXPECT_EQ(a->blocks[1]->attn->qkv->bias.to_vector<float>(), b->blocks[1]->attn->qkv->bias.to_vector<float>());
}

TEST(HfGpt2, AMissingTensorIsNamedWithItsShape) {
  TempDir tmp;
  write_variant(tmp, [](auto &t) { t.erase("transformer.h.1.mlp.c_fc.bias"); });
  auto load = [&] { nn::load_hf_gpt2(tmp.str()); };
  EXPECT_TRUE(throws_with(load, "model.safetensors: tensor 'h.1.mlp.c_fc.bias' is missing"));
  EXPECT_TRUE(throws_with(load, "[128]"));
}

TEST(HfGpt2, AWrongShapeNamesTheTensorAndBothShapes) {
  TempDir tmp;
  write_variant(tmp, [](auto &t) {
    nn::RawTensor &w = t.at("transformer.h.0.attn.c_attn.weight");
    w.shape = {96, 32};  // our (out, in) orientation instead of Conv1D's (in, out)
  });
  auto load = [&] { nn::load_hf_gpt2(tmp.str()); };
  EXPECT_TRUE(throws_with(load, "tensor 'h.0.attn.c_attn.weight' has shape [96, 32] in the file"));
  EXPECT_TRUE(throws_with(load, "needs [32, 96]"));
}

TEST(HfGpt2, AnUnexpectedTensorIsNamed) {
  TempDir tmp;
  write_variant(tmp, [](auto &t) {
    t.emplace("transformer.h.0.attn.rotary.weight", nn::RawTensor::from_f32({2}, std::vector<float>{1, 2}));
  });
  EXPECT_TRUE(throws_with([&] { nn::load_hf_gpt2(tmp.str()); }, "unexpected tensor 'h.0.attn.rotary.weight' [2]"));
}

TEST(HfGpt2, AnUntiedHeadUnderATiedConfigIsAnError) {
  TempDir tmp;
  write_variant(tmp, [](auto &t) {
    nn::RawTensor &h = t.at("lm_head.weight");
    std::vector<float> v = h.to_f32();
    v[5] += 1.0f;
    h = nn::RawTensor::from_f32(h.shape, v);
  });
  EXPECT_TRUE(throws_with([&] { nn::load_hf_gpt2(tmp.str()); }, "'lm_head.weight' differs from 'wte.weight'"));
}

TEST(HfGpt2, ConfigErrorsNameTheKeyAndTheValidValues) {
  TempDir tmp;
  write_variant(tmp, nullptr, [](auto &c) { c["activation_function"] = "relu"; });
  auto load = [&] { nn::load_hf_gpt2(tmp.str()); };
  EXPECT_TRUE(throws_with(load, "config.json: 'activation_function' is \"relu\""));
  EXPECT_TRUE(throws_with(load, "valid values: gelu_new, gelu_pytorch_tanh"));

  write_variant(tmp, nullptr, [](auto &c) { c["activation_function"] = "gelu_pytorch_tanh"; });
  EXPECT_NO_THROW(load());
  write_variant(tmp, nullptr, [](auto &c) { c.erase("n_embd"); });
  EXPECT_TRUE(throws_with(load, "missing key 'n_embd'"));
  write_variant(tmp, nullptr, [](auto &c) { c["n_inner"] = 64; });
  EXPECT_TRUE(throws_with(load, "'n_inner' is 64"));
  write_variant(tmp, nullptr, [](auto &c) { c["model_type"] = "gpt_neo"; });
  EXPECT_TRUE(throws_with(load, "model_type is \"gpt_neo\""));
  write_variant(tmp, nullptr, [](auto &c) { c["attn_pdrop"] = 0.0; });
  EXPECT_TRUE(throws_with(load, "attn_pdrop 0 differ"));
  write_variant(tmp, nullptr, [](auto &c) { c["n_positions"] = 32; });  // wpe is [16, 32] in the file
  EXPECT_TRUE(throws_with(load, "tensor 'wpe.weight' has shape [16, 32] in the file but"));
  EXPECT_TRUE(throws_with(load, "config.json needs [32, 32]"));
}

// IEEE 754 binary16 and bfloat16 bit patterns with their exact values.
TEST(HalfFloat, WidensExactly) {
  EXPECT_EQ(nn::f16_to_f32(0x3C00), 1.0f);
  EXPECT_EQ(nn::f16_to_f32(0xC000), -2.0f);
  EXPECT_EQ(nn::f16_to_f32(0x7BFF), 65504.0f);               // largest finite
  EXPECT_EQ(nn::f16_to_f32(0x0400), std::ldexp(1.0f, -14));  // smallest normal
  EXPECT_EQ(nn::f16_to_f32(0x0001), std::ldexp(1.0f, -24));  // smallest subnormal
  EXPECT_EQ(nn::f16_to_f32(0x03FF), std::ldexp(1023.0f, -24));
  EXPECT_EQ(nn::f16_to_f32(0x3555), 0.25f + 341 * std::ldexp(1.0f, -12));  // 0.333251953125
  EXPECT_EQ(std::bit_cast<uint32_t>(nn::f16_to_f32(0x8000)), 0x80000000u);  // -0
  EXPECT_EQ(nn::f16_to_f32(0x7C00), std::numeric_limits<float>::infinity());
  EXPECT_EQ(nn::f16_to_f32(0xFC00), -std::numeric_limits<float>::infinity());
  EXPECT_TRUE(std::isnan(nn::f16_to_f32(0x7E00)));
  EXPECT_EQ(nn::bf16_to_f32(0x3F80), 1.0f);
  EXPECT_EQ(nn::bf16_to_f32(0xC0A0), -5.0f);
  EXPECT_EQ(nn::bf16_to_f32(0x7F80), std::numeric_limits<float>::infinity());
}

// The fixture's weights cut to bfloat16 (the top 16 bits of each float) load as those values exactly.
TEST(HfGpt2, ReadsBfloat16Checkpoints) {
  TempDir tmp;
  write_variant(tmp, [](auto &t) {
    for (auto &[name, r] : t) {
      std::vector<float> v = r.to_f32();
      nn::RawTensor h{"BF16", r.shape, std::vector<uint8_t>(2 * v.size())};
      for (size_t i = 0; i < v.size(); ++i) {
        const uint16_t top = uint16_t(std::bit_cast<uint32_t>(v[i]) >> 16);
        std::memcpy(h.data.data() + 2 * i, &top, 2);
      }
      r = h;
    }
  });
  auto full = nn::load_hf_gpt2(fixture_dir().string()), half = nn::load_hf_gpt2(tmp.str());
  auto pf = full->named_parameters(), ph = half->named_parameters();
  for (size_t i = 0; i < pf.size(); ++i) {
    std::vector<float> want = pf[i].second.to_vector<float>();
    for (float &x : want) x = std::bit_cast<float>(std::bit_cast<uint32_t>(x) & 0xFFFF0000u);
    EXPECT_EQ(ph[i].second.to_vector<float>(), want) << pf[i].first;
  }
}

TEST(HfGpt2, AnIntegerTensorIsAnErrorNamingIt) {
  TempDir tmp;
  write_variant(tmp, [](auto &t) {
    const nn::RawTensor &r = t.at("transformer.ln_f.bias");
    t["transformer.ln_f.bias"] = nn::RawTensor::from_i64(r.shape, std::vector<int64_t>(size_t(r.numel()), 0));
  });
  EXPECT_TRUE(throws_with([&] { nn::load_hf_gpt2(tmp.str()); }, "tensor 'ln_f.bias' has dtype I64"));
}
