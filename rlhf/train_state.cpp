// Checkpoint folders of resumable runs: each part saved and loaded under its name.
#include "rlhf/train_state.h"

#include "nn/distributed.h"

#include <unistd.h>

#include <cmath>
#include <filesystem>
#include <limits>
#include <sstream>

#include <fmt/format.h>

#include "nn/atomic_file.h"
#include "nn/checkpoint.h"
#include "rlhf/kill_point.h"
#include "tensor/random.h"

namespace nanorlhf::rlhf {

namespace fs = std::filesystem;
using nlohmann::json;

json exact_json(double v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  return v;  // nlohmann writes the shortest digits that read back to the same double
}

double exact_double(const json &j) {
  if (j.is_number()) return j.get<double>();
  NR_CHECK(j.is_string(), "expected a number, \"nan\", \"inf\" or \"-inf\", got {}", j.dump());
  const std::string s = j.get<std::string>();
  if (s == "nan") return std::numeric_limits<double>::quiet_NaN();
  if (s == "inf" || s == "-inf") return s[0] == '-' ? -HUGE_VAL : HUGE_VAL;
  NR_CHECK(false, "expected a number, \"nan\", \"inf\" or \"-inf\", got {}", j.dump());
  return 0;
}

TrainState &TrainState::add(const std::string &name, nn::Module &model) {
  parts_.push_back({name, [&model, name](const std::string &dir, json &values) {
                      nn::save_tensors((fs::path(dir) / (name + ".safetensors")).string(), model.state_dict());
                      values[name + ".training"] = model.is_training();  // dropout on or off
                    },
                    [&model, name](const std::string &dir, const json &values) {
                      nn::load_checkpoint((fs::path(dir) / (name + ".safetensors")).string(), model);
                      NR_CHECK(values.contains(name + ".training"), "{}/trainer_state.json: no '{}.training'", dir, name);
                      model.train(values[name + ".training"].get<bool>());
                    }});
  return *this;
}

TrainState &TrainState::add(const std::string &name, optim::Optimization &opt) {
  const std::string file = name + ".optimizer.safetensors";
  parts_.push_back({name, [&opt, file](const std::string &dir, json &) {
                      nn::save_tensors((fs::path(dir) / file).string(), opt.state_dict());
                    },
                    [&opt, file](const std::string &dir, const json &) {
                      const std::string path = (fs::path(dir) / file).string();
                      try {
                        opt.load_state_dict(nn::load_tensors(path));
                      } catch (const std::exception &e) {
                        throw Error(fmt::format("{}: {}", path, e.what()));
                      }
                    }});
  return *this;
}

TrainState &TrainState::value(const std::string &name, std::function<json()> get,
                              std::function<void(const json &)> set) {
  parts_.push_back({name, [get, name](const std::string &, json &values) { values[name] = get(); },
                    [set, name](const std::string &dir, const json &values) {
                      NR_CHECK(values.contains(name), "{}/trainer_state.json: no value '{}'", dir, name);
                      try {
                        set(values[name]);
                      } catch (const std::exception &e) {
                        throw Error(fmt::format("{}/trainer_state.json: value '{}': {}", dir, name, e.what()));
                      }
                    }});
  return *this;
}

TrainState &TrainState::add(const std::string &name, EpochSampler &s) {
  return value(name, [&s] { return json{{"epoch", s.position().epoch}, {"cursor", s.position().cursor}}; },
               [&s](const json &j) { s.seek({j.at("epoch").get<int64_t>(), j.at("cursor").get<size_t>()}); });
}
TrainState &TrainState::add(const std::string &name, std::mt19937_64 &rng) {
  return value(name,
               [&rng] {
                 std::ostringstream os;
                 os << rng;  // the standard's text form of the engine's whole state
                 return json(os.str());
               },
               [&rng](const json &j) {
                 std::istringstream is(j.get<std::string>());
                 is >> rng;
                 NR_CHECK(!is.fail(), "not a std::mt19937_64 state");
               });
}
TrainState &TrainState::add(const std::string &name, int64_t &v) {
  return value(name, [&v] { return json(v); }, [&v](const json &j) { v = j.get<int64_t>(); });
}
TrainState &TrainState::add(const std::string &name, bool &v) {
  return value(name, [&v] { return json(v); }, [&v](const json &j) { v = j.get<bool>(); });
}
TrainState &TrainState::add(const std::string &name, std::string &v) {
  // Text sampled byte by byte may cut a UTF-8 character, which a JSON string cannot hold: such
  // text goes as {"hex": ...}.
  return value(name,
               [&v] {
                 try {
                   return json::parse(json(v).dump());
                 } catch (const json::exception &) {
                   std::string hex;
                   for (unsigned char c : v) hex += fmt::format("{:02x}", c);
                   return json{{"hex", hex}};
                 }
               },
               [&v](const json &j) {
                 if (j.is_string()) return void(v = j.get<std::string>());
                 const std::string hex = j.at("hex").get<std::string>();
                 v.clear();
                 for (size_t i = 0; i + 1 < hex.size(); i += 2) v += char(std::stoi(hex.substr(i, 2), nullptr, 16));
               });
}
TrainState &TrainState::add(const std::string &name, double &v) {
  return value(name, [&v] { return exact_json(v); }, [&v](const json &j) { v = exact_double(j); });
}
TrainState &TrainState::add(const std::string &name, std::vector<double> &v) {
  return value(name,
               [&v] {
                 json a = json::array();
                 for (double x : v) a.push_back(exact_json(x));
                 return a;
               },
               [&v](const json &j) {
                 v.clear();
                 for (const auto &x : j) v.push_back(exact_double(x));
               });
}

void TrainState::save(const std::string &dir, const json &loop, const std::vector<std::string> &files) const {
  if (!dist::is_main()) return;  // rank 0 alone writes; every rank holds the same state
  const int64_t step = checkpoint_step(dir);
  const std::string tmp = dir + ".tmp." + std::to_string(::getpid());
  std::error_code ec;
  fs::remove_all(tmp, ec);
  fs::create_directories(tmp, ec);
  NR_CHECK(!ec, "checkpoint: cannot create '{}': {}", tmp, ec.message());
  json values = json::object();
  for (const Part &p : parts_) p.save(tmp, values);
  kill_point("save", step);
  for (const std::string &f : files)
    if (fs::exists(f)) nn::write_file_atomic((fs::path(tmp) / fs::path(f).filename()).string(), nn::read_file(f));
  const RngState rng = get_rng_state();
  const json state = {{"global_step", step}, {"rng", {{"seed", rng.seed}, {"offset", rng.offset}}},
                      {"values", values}, {"loop", loop}};
  nn::write_file_atomic((fs::path(tmp) / "trainer_state.json").string(), state.dump(1) + "\n");
  fs::remove_all(dir, ec);  // a later checkpoint of an earlier attempt: this one replaces it
  fs::rename(tmp, dir, ec);
  NR_CHECK(!ec, "checkpoint: cannot rename '{}' to '{}': {}", tmp, dir, ec.message());
}

json TrainState::load(const std::string &dir) {
  const std::string file = (fs::path(dir) / "trainer_state.json").string();
  json state;
  try {
    state = json::parse(nn::read_file(file));
  } catch (const std::exception &e) {
    throw Error(fmt::format("resume: {}: {} (is '{}' a checkpoint-N folder?)", file, e.what(), dir));
  }
  NR_CHECK(state.is_object() && state.contains("values") && state.contains("loop") && state.contains("rng"),
           "resume: {} lacks values, loop or rng", file);
  for (Part &p : parts_) p.load(dir, state["values"]);
  set_rng_state({state["rng"].at("seed").get<uint64_t>(), state["rng"].at("offset").get<uint64_t>()});
  return state["loop"];
}

int64_t checkpoint_step(const std::string &path) {
  const std::string name = fs::path(path).filename().string();
  if (name.rfind("checkpoint-", 0) != 0 || name.size() == 11) return -1;
  int64_t n = 0;
  for (size_t i = 11; i < name.size(); ++i) {
    if (name[i] < '0' || name[i] > '9' || n > (int64_t(1) << 50)) return -1;
    n = n * 10 + (name[i] - '0');
  }
  return n;
}

std::string latest_checkpoint(const std::string &dir) {
  std::string best;
  int64_t best_n = -1;
  std::error_code ec;
  for (const auto &e : fs::directory_iterator(dir, ec)) {
    const int64_t n = checkpoint_step(e.path().string());
    if (n > best_n && fs::exists(e.path() / "trainer_state.json")) best_n = n, best = e.path().string();
  }
  return best;
}

}  // namespace nanorlhf::rlhf
