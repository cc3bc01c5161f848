// `nanorlhf pipeline`: every stage in order from one config, then the summary table
// (rlhf/trainers/pipeline.h). `make demo` runs it with the built-in defaults.
#include <chrono>
#include <cstdio>
#include <memory>

#include "rlhf/cli/common.h"
#include "rlhf/trainers/pipeline.h"

namespace nanorlhf::cli {

void setup_pipeline(CLI::App &cmd) {
  auto flags = std::make_shared<ConfigFlags>();
  auto out = std::make_shared<std::string>();
  add_config_flags(cmd, *flags);
  cmd.add_option("--out", *out, "output folder (same as --set out=...)");
  cmd.callback([flags, out] {
    rlhf::Config c(rlhf::pipeline_schema());
    if (!out->empty()) flags->sets.insert(flags->sets.begin(), "out=" + *out);
    if (!build_config(c, *flags)) return;
    auto t0 = std::chrono::steady_clock::now();
    rlhf::PipelineResult r = rlhf::run_pipeline(c);
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    std::printf("\n%s", rlhf::summary_table(r.summary).c_str());
    std::printf("\npipeline finished in %.0f s; wrote %s/summary.json and %s/report.html\n", s, r.out.c_str(), r.out.c_str());
  });
}

}  // namespace nanorlhf::cli
