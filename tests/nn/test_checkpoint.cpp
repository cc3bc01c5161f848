// Checkpoints: round trip of a small module tree, config.json beside the weights, errors that name
// the file (wrong shape, missing/extra parameters, truncated file), and atomic saves.
#include <filesystem>
#include <fstream>

#include <unistd.h>

#include "nn/atomic_file.h"
#include "nn/checkpoint.h"
#include "nn/safetensors.h"
#include "test_util.h"

using namespace nanorlhf;
using namespace nr_test;
namespace fs = std::filesystem;

namespace {

struct Inner : nn::Module {
  Tensor w;
  explicit Inner(int64_t n, DType dt) { w = register_parameter("w", randn({n, 3}, {.dtype = dt})); }
};
struct Tiny : nn::Module {
  Tensor scale, bias;
  std::shared_ptr<Inner> inner;
  explicit Tiny(int64_t n = 4, DType dt = kFloat32) {
    scale = register_parameter("scale", randn({n}, {.dtype = dt}));
    bias = register_parameter("bias", randn({2}, {.dtype = kFloat64}));  // mixed dtypes round-trip too
    inner = register_module("inner", std::make_shared<Inner>(n, dt));
  }
};

struct TempDir {
  fs::path path;
  TempDir() {
    path = fs::temp_directory_path() / ("nr_ckpt_" + std::to_string(::getpid()) + "_" +
                                        ::testing::UnitTest::GetInstance()->current_test_info()->name());
    fs::remove_all(path);
  }
  ~TempDir() { fs::remove_all(path); }
  std::string operator/(const std::string &s) const { return (path / s).string(); }
};

std::string error_of(const std::function<void()> &f) {
  try {
    f();
  } catch (const std::exception &e) {
    return e.what();
  }
  return "(no error)";
}

TEST(Checkpoint, RoundTripsEveryParameterAndTheConfig) {
  TempDir tmp;
  manual_seed(1);
  Tiny a;
  nlohmann::json cfg = {{"model", {{"d_model", 4}}}, {"lr", 0.001}};
  nn::save_checkpoint(tmp / "run", a, cfg, {{"step", 17}, {"note", "hi"}});
  EXPECT_TRUE(fs::exists(tmp / "run/model.safetensors"));
  EXPECT_EQ(nn::load_checkpoint_config(tmp / "run"), cfg);

  manual_seed(2);
  Tiny b;
  EXPECT_FALSE(allclose(b.scale, a.scale.to_vector<double>()));
  nn::load_checkpoint(tmp / "run", b);
  for (auto &[name, t] : a.state_dict()) {
    Tensor got = b.state_dict().at(name);
    EXPECT_EQ(got.dtype(), t.dtype()) << name;
    EXPECT_EQ(got.to_vector<double>(), t.to_vector<double>()) << name;  // bit-exact
  }
  // The file is plain safetensors with the dtype per tensor and our metadata.
  auto st = nn::load_safetensors(tmp / "run/model.safetensors");
  EXPECT_EQ(st.tensors.at("inner.w").dtype, "F32");
  EXPECT_EQ(st.tensors.at("bias").dtype, "F64");
  EXPECT_EQ(st.tensors.at("inner.w").shape, (std::vector<int64_t>{4, 3}));
  EXPECT_EQ(st.metadata.at("step"), "17");
  EXPECT_EQ(st.metadata.at("note"), "hi");
  // A path to the .safetensors file itself works too; load_tensors gives CPU tensors by name.
  auto tensors = nn::load_tensors(tmp / "run/model.safetensors");
  EXPECT_EQ(tensors.size(), 3u);
  EXPECT_EQ(tensors.at("scale").to_vector<float>(), a.scale.to_vector<float>());
}

TEST(Checkpoint, LoadsIntoAModelOfAnotherFloatDtype) {
  TempDir tmp;
  Tiny a(4, kFloat32);
  nn::save_checkpoint(tmp / "r", a, {});
  Tiny b(4, kFloat64);
  nn::load_checkpoint(tmp / "r", b);
  EXPECT_EQ(b.scale.dtype(), kFloat64);
  EXPECT_TRUE(allclose(b.scale, a.scale.to_vector<double>(), {.atol = 0, .rtol = 0}));
}

TEST(Checkpoint, WrongShapeNamesTheFileTheParameterAndBothShapes) {
  TempDir tmp;
  Tiny a(4);
  nn::save_checkpoint(tmp / "runs/x", a, {});
  Tiny b(5);
  std::string msg = error_of([&] { nn::load_checkpoint(tmp / "runs/x", b); });
  const std::string file = tmp / "runs/x/model.safetensors";
  EXPECT_NE(msg.find("checkpoint " + file + ": parameter '"), std::string::npos) << msg;
  EXPECT_NE(msg.find("has shape [5] in the model but [4] in the checkpoint"), std::string::npos) << msg;
}

TEST(Checkpoint, MissingAndUnexpectedParametersAreErrors) {
  TempDir tmp;
  struct Other : nn::Module {
    Other() { register_parameter("scale", zeros({4})); }
  } other;
  nn::save_checkpoint(tmp / "o", other, {});
  Tiny t(4);
  std::string msg = error_of([&] { nn::load_checkpoint(tmp / "o", t); });
  EXPECT_NE(msg.find("missing parameter 'bias'"), std::string::npos) << msg;
  nn::save_checkpoint(tmp / "t", t, {});
  msg = error_of([&] { nn::load_checkpoint(tmp / "t", other); });
  EXPECT_NE(msg.find("unexpected parameter"), std::string::npos) << msg;
  msg = error_of([&] { nn::load_checkpoint(tmp / "nowhere", other); });
  EXPECT_NE(msg.find("nowhere/model.safetensors: no such file"), std::string::npos) << msg;
}

TEST(Checkpoint, TruncatedFileGivesTheLoaderMessageAndThePath) {
  TempDir tmp;
  Tiny a;
  nn::save_checkpoint(tmp / "r", a, {});
  const std::string file = tmp / "r/model.safetensors";
  std::string bytes = nn::read_file(file);
  nn::write_file_atomic(file, bytes.substr(0, bytes.size() - 10));
  std::string msg = error_of([&] { nn::load_checkpoint(tmp / "r", a); });
  EXPECT_NE(msg.find(file), std::string::npos) << msg;
  EXPECT_NE(msg.find("truncated"), std::string::npos) << msg;
}

// The temporary the atomic writer would use is blocked by a folder: the save fails, and the old
// checkpoint still loads with its old values.
TEST(Checkpoint, AFailedSaveLeavesTheOldCheckpointIntact) {
  TempDir tmp;
  manual_seed(3);
  Tiny a;
  nn::save_checkpoint(tmp / "r", a, {{"v", 1}});
  const std::string file = tmp / "r/model.safetensors";
  const std::string blocker = file + ".tmp." + std::to_string(::getpid());
  fs::create_directory(blocker);
  manual_seed(4);
  Tiny b;
  EXPECT_THROW(nn::save_checkpoint(tmp / "r", b, {{"v", 2}}), std::exception);
  fs::remove(blocker);
  Tiny c;
  nn::load_checkpoint(tmp / "r", c);
  EXPECT_EQ(c.scale.to_vector<float>(), a.scale.to_vector<float>());
  EXPECT_EQ(nn::load_checkpoint_config(tmp / "r")["v"], 1);
  for (auto &e : fs::directory_iterator(tmp / "r"))  // no temporaries left behind
    EXPECT_EQ(e.path().string().find(".tmp."), std::string::npos) << e.path();
}

}  // namespace
