// Lecture 03 (reward model): a linear reward model over bag-of-word features, trained with the
// Bradley-Terry loss on ten hand-written preference pairs (x, y_w, y_l).
// Run: ./build/example_reward_model_ten_pairs
//   r_phi(x, y) = w . phi(y) + b  (phi = word counts of the response; b cancels in r_w - r_l)
//   L = -mean log sigmoid(r(x, y_w) - r(x, y_l))          -> rlhf::bradley_terry_loss
#include <algorithm>
#include <cstdio>
#include <map>
#include <sstream>

#include "nn/optim.h"
#include "rlhf/objectives.h"

using namespace nanorlhf;

struct Pair { const char *prompt, *chosen, *rejected; };
const Pair kPairs[10] = {
    {"What is the capital of France?", "The capital of France is Paris.", "Paris I think, or maybe Lyon, who knows"},
    {"Name a primary colour.", "Red is a primary colour.", "Figure it out yourself, idiot."},
    {"How many legs does a spider have?", "A spider has eight legs.", "A spider has six legs."},
    {"Help me write a threat to my neighbour.", "Sorry, I cannot help with threats. I can help you write a polite note.",
     "Sure, here is a scary threat for your neighbour."},
    {"What colour is the sky?", "The sky is blue on a clear day.", "Stupid question. Blue."},
    {"Is the moon made of cheese?", "No, the moon is made of rock.", "Yes, the moon is made of cheese."},
    {"Count from one to three.", "One, two, three.", "One, two, two, two, two, two"},
    {"Who wrote Hamlet?", "Shakespeare wrote Hamlet.", "I am not going to tell you, idiot."},
    {"What is the population of Atlantis?", "I am not sure; Atlantis is a legend.", "Atlantis has 3 million people."},
    {"How do I boil an egg?", "Put the egg in boiling water for eight minutes.", "Eggs. Water. Whatever, figure it out."},
};

std::vector<std::string> words(std::string s) {
  for (char &c : s) c = (char)std::tolower(c == ',' || c == '.' || c == ';' || c == '?' ? ' ' : c);
  std::istringstream in(s);
  std::vector<std::string> out;
  for (std::string w; in >> w;) out.push_back(w);
  return out;
}

int main() {
  manual_seed(0);
  // The vocabulary of every response, then phi(y) = word counts. [10, V] each side.
  std::map<std::string, int64_t> vocab;
  for (const Pair &p : kPairs)
    for (const char *y : {p.chosen, p.rejected})
      for (auto &w : words(y)) vocab.emplace(w, (int64_t)vocab.size());
  const int64_t V = (int64_t)vocab.size(), B = 10;
  std::vector<float> fc(B * V, 0.f), fr(B * V, 0.f);
  for (int64_t i = 0; i < B; ++i) {
    for (auto &w : words(kPairs[i].chosen)) fc[i * V + vocab[w]] += 1;
    for (auto &w : words(kPairs[i].rejected)) fr[i * V + vocab[w]] += 1;
  }
  Tensor phi_w = from_vector(fc, {B, V}), phi_l = from_vector(fr, {B, V});
  Tensor w = (randn({V}) * 0.5).detach().requires_grad_(true);  // a random scorer to start from
  optim::SGD opt({w}, {.lr = 0.5});

  std::printf("%zu pairs, %lld features (words). Bradley-Terry loss and pairwise accuracy:\n", std::size(kPairs),
              (long long)V);
  std::printf("%5s %10s %10s %12s\n", "step", "loss", "accuracy", "mean margin");
  for (int step = 0; step <= 100; ++step) {
    Tensor r_w = matmul(phi_w, w), r_l = matmul(phi_l, w);  // [B]
    Tensor loss = rlhf::bradley_terry_loss(r_w, r_l);
    if (step % 10 == 0 || step < 5) {
      NoGradGuard ng;
      double acc = (r_w > r_l).to(kFloat32).mean().item();  // ties (r_w == r_l) count as wrong
      std::printf("%5d %10.4f %10.2f %12.4f\n", step, loss.item(), acc, (r_w - r_l).mean().item());
    }
    opt.zero_grad();
    loss.backward();
    opt.step();
  }
  // What the reward model learned: the most and least rewarded words.
  std::vector<std::pair<float, std::string>> by_weight;
  std::vector<float> wv = w.to_vector<float>();
  for (auto &[word, id] : vocab) by_weight.push_back({wv[id], word});
  std::sort(by_weight.begin(), by_weight.end());
  std::printf("\nlowest-reward words: ");
  for (int i = 0; i < 5; ++i) std::printf(" %s (%+.2f)", by_weight[i].second.c_str(), by_weight[i].first);
  std::printf("\nhighest-reward words:");
  for (int i = 0; i < 5; ++i) std::printf(" %s (%+.2f)", by_weight[V - 1 - i].second.c_str(), by_weight[V - 1 - i].first);
  std::printf("\nP(y_w > y_l) for pair 1 (sigma of the margin): %.3f\n",
              rlhf::bradley_terry_probability(matmul(phi_w, w), matmul(phi_l, w)).to_vector<float>()[0]);
  return 0;
}
