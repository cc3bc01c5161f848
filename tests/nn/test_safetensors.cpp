// Tests of safetensors I/O and atomic writes: round trips of every dtype, a known file byte for byte,
// rejection of every truncation and malformed header, and the old file surviving a failed write.
#include <gtest/gtest.h>

#include <csignal>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <random>
#include <sys/resource.h>
#include <unistd.h>

#include "nn/atomic_file.h"
#include "nn/safetensors.h"

using namespace nanorlhf::nn;
namespace fs = std::filesystem;

namespace {

fs::path temp_dir() {
  fs::path d = fs::temp_directory_path() / ("nanorlhf_st_" + std::to_string(::getpid()));
  fs::create_directories(d);
  return d;
}

RawTensor random_tensor(const std::string& dtype, std::vector<int64_t> shape, std::mt19937& rng) {
  RawTensor t{dtype, std::move(shape), {}};
  t.data.resize(t.numel() * dtype_itemsize(dtype));
  for (auto& b : t.data) b = static_cast<uint8_t>(rng());
  if (dtype == "BOOL")
    for (auto& b : t.data) b &= 1;
  return t;
}

std::string le64(uint64_t v) {
  std::string s;
  for (int i = 0; i < 8; ++i) s.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
  return s;
}

// Header length + header + data, with the header given verbatim (no padding added).
std::string raw_file(const std::string& header, const std::string& data) { return le64(header.size()) + header + data; }

void expect_parse_error(const std::string& bytes, const std::string& needle) {
  try {
    parse_safetensors(bytes, "x.safetensors");
    FAIL() << "expected an error containing: " << needle;
  } catch (const std::runtime_error& e) {
    std::string msg = e.what();
    EXPECT_NE(msg.find("x.safetensors"), std::string::npos) << msg;
    EXPECT_NE(msg.find(needle), std::string::npos) << msg;
  }
}

}  // namespace

TEST(Safetensors, RoundTripAllDtypesAndShapes) {
  std::mt19937 rng(1);
  std::map<std::string, RawTensor> tensors = {
      {"f32", random_tensor("F32", {3, 4}, rng)},   {"f64", random_tensor("F64", {5}, rng)},
      {"i32", random_tensor("I32", {2, 1, 3}, rng)}, {"i64", random_tensor("I64", {7}, rng)},
      {"u8", random_tensor("U8", {9}, rng)},         {"bool", random_tensor("BOOL", {4}, rng)},
      {"bf16", random_tensor("BF16", {2, 2}, rng)},  {"scalar", random_tensor("F32", {}, rng)},
      {"empty", random_tensor("F32", {0, 4}, rng)},  {"empty2", random_tensor("I64", {3, 0}, rng)},
  };
  std::map<std::string, std::string> meta = {{"format", "pt"}, {"step", "12"}};
  fs::path path = temp_dir() / "rt.safetensors";
  save_safetensors(path, tensors, meta);

  SafetensorsFile f = load_safetensors(path);
  EXPECT_EQ(f.metadata, meta);
  ASSERT_EQ(f.tensors.size(), tensors.size());
  for (const auto& [name, t] : tensors) {
    const auto& g = f.tensors.at(name);
    EXPECT_EQ(g.dtype, t.dtype) << name;
    EXPECT_EQ(g.shape, t.shape) << name;
    EXPECT_EQ(g.data, t.data) << name;
  }
  EXPECT_EQ(f.tensors.at("scalar").data.size(), 4u);
  EXPECT_EQ(f.tensors.at("empty").data.size(), 0u);
  // Header padded to a multiple of 8 with spaces.
  std::string bytes = read_file(path);
  uint64_t n = 0;
  std::memcpy(&n, bytes.data(), 8);
  EXPECT_EQ(n % 8, 0u);
  EXPECT_EQ(bytes[8], '{');
  fs::remove_all(path.parent_path());
}

TEST(Safetensors, TypedHelpers) {
  std::vector<float> v = {1.5f, -2.0f, 3.25f, 0.0f, 7.0f, 8.0f};
  RawTensor t = RawTensor::from_f32({2, 3}, v);
  EXPECT_EQ(t.to_f32(), v);
  EXPECT_THROW(t.to_i64(), std::invalid_argument);
  EXPECT_THROW(RawTensor::from_f32({4}, v), std::invalid_argument);
  std::vector<int64_t> ids = {1, -2, 1ll << 40};
  EXPECT_EQ(RawTensor::from_i64({3}, ids).to_i64(), ids);
}

TEST(Safetensors, KnownFileByteForByte) {
  // {"a": F32 [2] = {1.0, 2.0}, "b": I64 [] = 5} with metadata {"k": "v"}.
  std::map<std::string, RawTensor> tensors;
  tensors["a"] = RawTensor::from_f32({2}, std::vector<float>{1.0f, 2.0f});
  tensors["b"] = RawTensor::from_i64({}, std::vector<int64_t>{5});
  std::string header =
      R"({"__metadata__":{"k":"v"},"a":{"data_offsets":[0,8],"dtype":"F32","shape":[2]},)"
      R"("b":{"data_offsets":[8,16],"dtype":"I64","shape":[]}})";
  ASSERT_EQ(header.size(), 132u);
  header += "    ";  // padded to 136, a multiple of 8
  std::string data("\x00\x00\x80\x3f\x00\x00\x00\x40"   // 1.0f, 2.0f
                   "\x05\x00\x00\x00\x00\x00\x00\x00",  // int64 5
                   16);
  std::string want = std::string("\x88\x00\x00\x00\x00\x00\x00\x00", 8) + header + data;
  EXPECT_EQ(serialize_safetensors(tensors, {{"k", "v"}}), want);

  SafetensorsFile f = parse_safetensors(want, "known");
  EXPECT_EQ(f.tensors.at("a").to_f32(), (std::vector<float>{1.0f, 2.0f}));
  EXPECT_EQ(f.tensors.at("b").to_i64(), (std::vector<int64_t>{5}));
  EXPECT_EQ(f.metadata.at("k"), "v");
}

TEST(Safetensors, AcceptsOtherWritersLayout) {
  // Keys in another order, offsets not in name order, no padding: all valid per the spec.
  std::string header = R"({"z":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},"a":{"shape":[1],"dtype":"U8","data_offsets":[2,3]}})";
  SafetensorsFile f = parse_safetensors(raw_file(header, "xyw"), "other");
  EXPECT_EQ(f.tensors.at("z").data, (std::vector<uint8_t>{'x', 'y'}));
  EXPECT_EQ(f.tensors.at("a").data, (std::vector<uint8_t>{'w'}));
}

TEST(Safetensors, EveryTruncationThrows) {
  std::mt19937 rng(3);
  std::map<std::string, RawTensor> tensors = {{"w", random_tensor("F32", {3, 2}, rng)},
                                              {"b", random_tensor("I64", {2}, rng)}};
  std::string bytes = serialize_safetensors(tensors, {{"m", "1"}});
  ASSERT_NO_THROW(parse_safetensors(bytes, "full"));
  for (size_t len = 0; len < bytes.size(); ++len) {
    EXPECT_THROW(parse_safetensors(std::string_view(bytes).substr(0, len), "x.safetensors"), std::runtime_error)
        << "prefix of " << len << " bytes";
  }
  expect_parse_error(bytes.substr(0, 5), "too short");
  expect_parse_error(bytes.substr(0, 20), "truncated header");
  expect_parse_error(bytes.substr(0, bytes.size() - 1), "truncated: tensor 'w' needs bytes [16, 40)");
}

TEST(Safetensors, RejectsMalformedFiles) {
  expect_parse_error(le64(1ull << 40) + "{}", "oversized header");
  expect_parse_error(le64(200'000'000) + "{}", "oversized header");
  expect_parse_error(raw_file("{\"a\": ", ""), "invalid JSON");
  expect_parse_error(raw_file("{\"a\": 22e2200}", ""), "invalid JSON");  // out_of_range, found by fuzz_safetensors
  expect_parse_error(raw_file("[1,2]", ""), "must be a JSON object");
  expect_parse_error(raw_file(R"({"w":{"dtype":"F33","shape":[1],"data_offsets":[0,4]}})", "abcd"),
                     "tensor 'w': unknown dtype 'F33'");
  expect_parse_error(raw_file(R"({"w":{"dtype":"F32","shape":[2],"data_offsets":[0,4]}})", "abcd"),
                     "tensor 'w': shape [2] of F32 needs 8 bytes");
  expect_parse_error(raw_file(R"({"w":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}})", "abcd"),
                     "non-negative");
  expect_parse_error(raw_file(R"({"w":{"dtype":"U8","shape":[2],"data_offsets":[2,0]}})", "ab"), "out of order");
  expect_parse_error(raw_file(R"({"w":{"dtype":"U8","shape":[2]}})", "ab"), "missing \"data_offsets\"");
  expect_parse_error(raw_file(R"({"a":{"dtype":"U8","shape":[2],"data_offsets":[0,2]},)"
                              R"("b":{"dtype":"U8","shape":[2],"data_offsets":[1,3]}})",
                              "abc"),
                     "overlap");
  expect_parse_error(raw_file(R"({"a":{"dtype":"U8","shape":[1],"data_offsets":[1,2]}})", "ab"), "hole");
  expect_parse_error(raw_file(R"({"a":{"dtype":"U8","shape":[1],"data_offsets":[0,1]}})", "ab"), "cover only 1");
  expect_parse_error(raw_file(R"({"__metadata__":{"k":1}})", ""), "metadata value of 'k'");
}

TEST(Safetensors, SaveRejectsInconsistentTensors) {
  std::map<std::string, RawTensor> t = {{"w", RawTensor{"F32", {2}, std::vector<uint8_t>(4)}}};
  EXPECT_THROW(serialize_safetensors(t), std::invalid_argument);
  t = {{"w", RawTensor{"Q4", {1}, std::vector<uint8_t>(1)}}};
  EXPECT_THROW(serialize_safetensors(t), std::invalid_argument);
  EXPECT_THROW(load_safetensors("/nonexistent/dir/x.safetensors"), std::runtime_error);
}

TEST(AtomicFile, WritesAndReplaces) {
  fs::path dir = temp_dir();
  std::string path = (dir / "f.txt").string();
  write_file_atomic(path, "one");
  EXPECT_EQ(read_file(path), "one");
  write_file_atomic(path, std::string("two\0two", 7));
  EXPECT_EQ(read_file(path), std::string("two\0two", 7));
  for (const auto& e : fs::directory_iterator(dir)) EXPECT_EQ(e.path().filename(), "f.txt");  // no temp left
  fs::remove_all(dir);
}

TEST(AtomicFile, FailedWriteLeavesOldFileIntact) {
  fs::path dir = temp_dir();
  std::string path = (dir / "ckpt.safetensors").string();
  write_file_atomic(path, "old contents");

  // A write that fails midway: the file-size limit makes write() fail with EFBIG.
  std::string big(1 << 16, 'x');
  struct rlimit old_limit {};
  ASSERT_EQ(getrlimit(RLIMIT_FSIZE, &old_limit), 0);
  auto old_handler = std::signal(SIGXFSZ, SIG_IGN);
  struct rlimit small = old_limit;
  small.rlim_cur = 4096;
  ASSERT_EQ(setrlimit(RLIMIT_FSIZE, &small), 0);
  bool threw = false;
  std::string msg;
  try {
    write_file_atomic(path, big);
  } catch (const std::runtime_error& e) {
    threw = true;
    msg = e.what();
  }
  setrlimit(RLIMIT_FSIZE, &old_limit);
  std::signal(SIGXFSZ, old_handler);
  EXPECT_TRUE(threw);
  EXPECT_NE(msg.find(path), std::string::npos) << msg;
  EXPECT_EQ(read_file(path), "old contents");
  for (const auto& e : fs::directory_iterator(dir)) EXPECT_EQ(e.path().filename(), "ckpt.safetensors");

  // The temporary cannot be created (a directory sits at its name): old file intact again.
  fs::create_directory(path + ".tmp." + std::to_string(::getpid()));
  EXPECT_THROW(save_safetensors(path, {{"w", RawTensor::from_f32({1}, std::vector<float>{1.0f})}}), std::runtime_error);
  EXPECT_EQ(read_file(path), "old contents");
  fs::remove(path + ".tmp." + std::to_string(::getpid()));

  // Missing folder: clear error naming the path, nothing created.
  std::string nowhere = (dir / "no" / "such" / "file").string();
  try {
    write_file_atomic(nowhere, "x");
    FAIL();
  } catch (const std::runtime_error& e) {
    EXPECT_NE(std::string(e.what()).find(nowhere), std::string::npos);
  }
  fs::remove_all(dir);
}
