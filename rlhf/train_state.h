// What a resumable run saves every save_every steps as out/checkpoint-N/ (TRL's layout) and loads
// on `resume`: the weights it trains, its optimizers' moments, the random state, the data position
// and every counter its steps carry over. A run resumed from checkpoint-N ends where the
// uninterrupted run ends, bitwise on the CPU.
#pragma once
#include <cstdint>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "nn/module.h"
#include "nn/optimization.h"
#include "rlhf/batching.h"

namespace nanorlhf::rlhf {

// A checkpoint-N folder holds <name>.safetensors per model, <name>.optimizer.safetensors per
// optimizer, trainer_state.json (step, random state, sampler positions, values, the loop's own
// state) and copies of the run's config.json and metrics.jsonl at that step.
class TrainState {
 public:
  // Each part under a name of its own; a trainer adds what its steps read and change.
  TrainState &add(const std::string &name, nn::Module &model);
  TrainState &add(const std::string &name, optim::Optimization &optimizer);
  TrainState &add(const std::string &name, EpochSampler &sampler);
  TrainState &add(const std::string &name, std::mt19937_64 &rng);
  TrainState &add(const std::string &name, int64_t &value);
  TrainState &add(const std::string &name, double &value);  // exact, NaN and inf included
  TrainState &add(const std::string &name, bool &value);
  TrainState &add(const std::string &name, std::string &value);
  TrainState &add(const std::string &name, std::vector<double> &values);

  // Writes dir whole: into dir.tmp.<pid>/ first, then one rename, so a kill leaves the complete
  // checkpoint or a temporary that the next start removes. `loop` is the training loop's own
  // state; `files` are copied in by name.
  void save(const std::string &dir, const nlohmann::json &loop, const std::vector<std::string> &files) const;
  // Loads every part from dir and returns the loop's state; errors name the checkpoint and part.
  nlohmann::json load(const std::string &dir);

 private:
  TrainState &value(const std::string &name, std::function<nlohmann::json()> get,
                    std::function<void(const nlohmann::json &)> set);
  struct Part {
    std::string name;
    std::function<void(const std::string &dir, nlohmann::json &values)> save;
    std::function<void(const std::string &dir, const nlohmann::json &values)> load;
  };
  std::vector<Part> parts_;
};

// The checkpoint-N folder of `dir` with the highest N (complete ones only); "" when there is none.
std::string latest_checkpoint(const std::string &dir);
// N of a ".../checkpoint-N" path, or -1.
int64_t checkpoint_step(const std::string &path);

// A double as JSON that reads back bit for bit: a number, or "nan", "inf", "-inf".
nlohmann::json exact_json(double v);
double exact_double(const nlohmann::json &j);

}  // namespace nanorlhf::rlhf
