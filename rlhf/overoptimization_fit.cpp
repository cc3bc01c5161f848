// Gao et al. 2022's forms and their fits. Both forms are linear in (alpha, beta), so each fit is a
// 2x2 normal-equation solve; no iterative optimiser is needed.
#include "rlhf/overoptimization_fit.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

#include "tensor/error.h"

namespace nanorlhf::rlhf {

namespace {

// min over (a, b) of sum_i (R_i - a f_i + b g_i)^2, i.e. R = a f - b g: the normal equations.
OveroptFit least_squares(const std::vector<double> &f, const std::vector<double> &g, const std::vector<double> &R,
                         const char *who) {
  double ff = 0, fg = 0, gg = 0, fR = 0, gR = 0;
  for (size_t i = 0; i < R.size(); ++i) {
    ff += f[i] * f[i], fg += f[i] * g[i], gg += g[i] * g[i];
    fR += f[i] * R[i], gR += g[i] * R[i];
  }
  const double det = ff * gg - fg * fg;
  NR_CHECK(std::abs(det) > 1e-12 * std::max(1.0, ff * gg), "{}: the points do not determine alpha and beta "
           "(need two distinct d > 0)", who);
  OveroptFit fit;
  fit.alpha = (fR * gg - gR * fg) / det;
  fit.beta = -(gR * ff - fR * fg) / det;  // g enters with a minus sign
  return fit;
}

void check_points(const std::vector<double> &d, const std::vector<double> &R, const char *who) {
  NR_CHECK(d.size() == R.size(), "{}: {} values of d for {} of R", who, d.size(), R.size());
  for (double x : d) NR_CHECK(x >= 0 && std::isfinite(x), "{}: d = sqrt(KL) must be finite and >= 0, got {}", who, x);
}

}  // namespace

// \hat y = \arg\max_{i < n} r_{\text{proxy}}(x, y_i): the pick of best-of-n on nested samples.
size_t best_of_n(const std::vector<double> &proxy, int64_t n) {
  NR_CHECK(n >= 1 && (size_t)n <= proxy.size(), "best_of_n: n = {} of {} responses", n, proxy.size());
  return size_t(std::max_element(proxy.begin(), proxy.begin() + n) - proxy.begin());
}

// With the N responses sorted by proxy score, rank i = 1..N from the lowest, the i-th is the best of
// a uniformly drawn n-subset with probability (Gao et al. 2022's unbiased best-of-n estimator)
//   w_i = \binom{i-1}{n-1} \Big/ \binom{N}{n}
// so E[gold of the pick] = \sum_i w_i\, \text{gold}_i, from all N samples at once.
std::vector<double> bon_pick_weights(const std::vector<double> &proxy, int64_t n) {
  const int64_t N = (int64_t)proxy.size();
  NR_CHECK(n >= 1 && n <= N, "bon_pick_weights: n = {} of {} responses", n, N);
  std::vector<size_t> order(proxy.size());
  std::iota(order.begin(), order.end(), size_t(0));
  std::stable_sort(order.begin(), order.end(), [&](size_t a, size_t b) { return proxy[a] < proxy[b]; });
  auto log_choose = [](double a, double b) { return std::lgamma(a + 1) - std::lgamma(b + 1) - std::lgamma(a - b + 1); };
  std::vector<double> w(proxy.size(), 0.0);
  for (int64_t i = n; i <= N; ++i)  // fewer than n - 1 below it: never the best of n
    w[order[(size_t)(i - 1)]] = std::exp(log_choose(double(i - 1), double(n - 1)) - log_choose(double(N), double(n)));
  return w;
}

// Gao et al. 2022's best-of-n form, with d = \sqrt{\mathrm{KL}} and R = gold - gold at d = 0:
//   R_{\text{bon}}(d) = d\,(\alpha_{\text{bon}} - \beta_{\text{bon}}\, d)
double gold_bon(double d, double alpha, double beta) { return d * (alpha - beta * d); }

// Gao et al. 2022's RL form:
//   R_{\text{RL}}(d) = d\,(\alpha_{\text{RL}} - \beta_{\text{RL}} \log d)
double gold_rl(double d, double alpha, double beta) { return d > 0 ? d * (alpha - beta * std::log(d)) : 0.0; }

// dR_bon/dd = \alpha - 2 \beta d = 0:
//   d^*_{\text{bon}} = \frac{\alpha}{2 \beta}
double peak_bon(double alpha, double beta) {
  return beta > 0 ? alpha / (2 * beta) : std::numeric_limits<double>::infinity();
}

// dR_RL/dd = \alpha - \beta (\log d + 1) = 0:
//   d^*_{\text{RL}} = \exp\!\big(\alpha / \beta - 1\big)
double peak_rl(double alpha, double beta) {
  return beta > 0 ? std::exp(alpha / beta - 1) : std::numeric_limits<double>::infinity();
}

// \min_{\alpha,\beta} \sum_i \big(R_i - d_i(\alpha - \beta d_i)\big)^2
OveroptFit fit_bon(const std::vector<double> &d, const std::vector<double> &R) {
  check_points(d, R, "fit_bon");
  std::vector<double> g(d.size());
  for (size_t i = 0; i < d.size(); ++i) g[i] = d[i] * d[i];
  OveroptFit fit = least_squares(d, g, R, "fit_bon");
  fit.peak_d = peak_bon(fit.alpha, fit.beta);
  return fit;
}

// \min_{\alpha,\beta} \sum_i \big(R_i - d_i(\alpha - \beta \log d_i)\big)^2, with d \log d = 0 at d = 0
OveroptFit fit_rl(const std::vector<double> &d, const std::vector<double> &R) {
  check_points(d, R, "fit_rl");
  std::vector<double> g(d.size());
  for (size_t i = 0; i < d.size(); ++i) g[i] = d[i] > 0 ? d[i] * std::log(d[i]) : 0.0;
  OveroptFit fit = least_squares(d, g, R, "fit_rl");
  fit.peak_d = peak_rl(fit.alpha, fit.beta);
  return fit;
}

}  // namespace nanorlhf::rlhf
