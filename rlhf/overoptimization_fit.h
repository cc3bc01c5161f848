// The equations of the reward over-optimisation study (Gao, Schulman, Hilton 2022, "Scaling Laws for
// Reward Model Overoptimization"), one function each: the pick of best-of-n and its expectation over
// N samples, Gao et al.'s two functional forms of the gold score against d = sqrt(KL), their
// least-squares fits and their peaks. The KL of best-of-n is best_of_n_kl (rlhf/objectives.h).
#pragma once
#include <cstddef>
#include <cstdint>
#include <vector>

namespace nanorlhf::rlhf {

// The index of the response with the highest proxy score among the first n (ties: the first).
std::size_t best_of_n(const std::vector<double> &proxy, int64_t n);

// The weight of each of N responses in the expected best-of-n pick over every n-subset of them
// (Gao et al.'s unbiased estimator): sums to 1; 0 for all but the top-scoring when n = N.
std::vector<double> bon_pick_weights(const std::vector<double> &proxy, int64_t n);

// A functional form R(d) = d (alpha - beta g(d)) fitted to points (d, R): best-of-n g = d, RL g = log d.
struct OveroptFit {
  double alpha = 0, beta = 0;
  double peak_d = 0;  // argmax of R(d); +infinity when beta <= 0 (no peak: the form rises forever)
};

double gold_bon(double d, double alpha, double beta);
double gold_rl(double d, double alpha, double beta);
double peak_bon(double alpha, double beta);
double peak_rl(double alpha, double beta);
// Least squares over the points (d[i], R[i]); at least two points with d > 0.
OveroptFit fit_bon(const std::vector<double> &d, const std::vector<double> &R);
OveroptFit fit_rl(const std::vector<double> &d, const std::vector<double> &R);

}  // namespace nanorlhf::rlhf
