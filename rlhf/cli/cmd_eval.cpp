// `nanorlhf eval`: a policy against the SFT reference on held-out prompts, scored by the oracle
// (rlhf/trainers/evaluate.h).
#include <cstdio>
#include <memory>

#include "rlhf/cli/common.h"
#include "rlhf/trainers/evaluate.h"

namespace nanorlhf::cli {

void setup_eval(CLI::App &cmd) {
  auto flags = std::make_shared<ConfigFlags>();
  add_config_flags(cmd, *flags);
  cmd.footer("\nConfig keys (--set key=value):\n" + rlhf::Config(rlhf::evaluate_schema()).help_text());
  cmd.callback([flags] {
    rlhf::Config c(rlhf::evaluate_schema());
    if (!build_config(c, *flags)) return;
    rlhf::EvalResult r = rlhf::run_evaluate(c);
    std::printf("eval of %s vs %s on %zu prompts:\n", c.str("policy").c_str(), c.str("ref").c_str(), r.rows.size());
    std::printf("  eval/oracle_reward    %+.3f  (reference %+.3f)\n", r.oracle_reward, r.ref_oracle_reward);
    std::printf("  eval/win_rate_vs_sft  %.3f\n", r.win_rate);
    std::printf("  eval/kl_to_ref        %.3f\n", r.kl_to_ref);
    std::printf("  eval/response_length  %.1f tokens (%.0f%% ended with <|eos|>)\n", r.response_length,
                100 * r.finished);
    std::printf("  helpful %+.3f  honest %+.3f  harmless %+.3f\n", r.helpful, r.honest, r.harmless);
    std::printf("wrote %s/: metrics.jsonl, eval.json, samples.txt\n", c.str("out").c_str());
  });
}

}  // namespace nanorlhf::cli
