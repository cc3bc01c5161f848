// The backward engine: topological sort of the graph below the root, then one pass in reverse
// order that sums each node's incoming gradients and hands them to its backward formula.
#include <unordered_map>

#include "autograd/node.h"
#include "autograd/ops.h"

namespace nanorlhf::autograd {

namespace {
thread_local bool g_grad_enabled = true;
}

bool is_grad_enabled() { return g_grad_enabled; }
void set_grad_enabled(bool on) { g_grad_enabled = on; }

Tensor record(const char *name, const std::vector<Tensor> &inputs, Tensor out, BackwardFn fn) {
  if (!g_grad_enabled) return out;
  bool any = false;
  for (const auto &t : inputs) any = any || (t.defined() && t.requires_grad());
  if (!any) return out;
  auto node = std::make_shared<Node>();
  node->name = name;
  node->backward = std::move(fn);
  for (const auto &t : inputs) {
    Edge e;
    if (t.defined() && t.grad_fn()) e.node = t.grad_fn();
    else if (t.defined() && t.requires_grad()) e.leaf = t.impl_ptr();
    node->next.push_back(std::move(e));
  }
  out.impl().grad_fn = std::move(node);
  return out;
}

namespace {

void accumulate_leaf(const std::shared_ptr<TensorImpl> &leaf, const Tensor &g) {
  Tensor leaf_t(leaf);
  NR_CHECK(g.shape() == leaf->shape, "internal: gradient of shape {} for a leaf of shape {}", shape_str(g.shape()),
           shape_str(leaf->shape));
  Tensor old = leaf_t.grad();
  // A fresh tensor each time: the user may hold the previous .grad().
  leaf_t.set_grad(old.defined() ? add(old, g) : (g.is_contiguous() ? g.detach() : g.contiguous()));
}

}  // namespace

void run_backward(const Tensor &root, const Tensor &grad, bool retain_graph) {
  NoGradGuard no_grad;
  if (!root.grad_fn()) {
    NR_CHECK(root.requires_grad(), "backward: the tensor does not require grad and has no grad_fn");
    accumulate_leaf(root.impl_ptr(), grad);
    return;
  }
  // Iterative post-order DFS: `order` lists every node after all nodes that feed into it.
  std::vector<Node *> order;
  std::unordered_map<Node *, int> state;  // 1 = on stack, 2 = done
  std::vector<std::pair<Node *, size_t>> stack{{root.grad_fn().get(), 0}};
  state[root.grad_fn().get()] = 1;
  while (!stack.empty()) {
    auto &[n, i] = stack.back();
    if (i < n->next.size()) {
      Node *c = n->next[i++].node.get();
      if (c && !state.count(c)) { state[c] = 1; stack.push_back({c, 0}); }
    } else {
      state[n] = 2;
      order.push_back(n);
      stack.pop_back();
    }
  }
  std::unordered_map<Node *, Tensor> grads;
  grads[root.grad_fn().get()] = grad;
  for (auto it = order.rbegin(); it != order.rend(); ++it) {
    Node *n = *it;
    auto g = grads.find(n);
    if (g == grads.end()) continue;  // no gradient flows here
    Tensor gout = g->second;
    grads.erase(g);
    NR_CHECK(n->backward, "backward through the graph a second time ({}): its saved tensors were freed; "
             "pass retain_graph=true to the first backward()", n->name);
    std::vector<Tensor> gin = n->backward(gout);
    if (!retain_graph) n->backward = nullptr;
    NR_CHECK(gin.size() == n->next.size(), "internal: {} returned {} gradients for {} inputs", n->name, gin.size(),
             n->next.size());
    for (size_t i = 0; i < gin.size(); ++i) {
      const Edge &e = n->next[i];
      if (!gin[i].defined()) continue;
      if (e.node) {
        auto [slot, fresh] = grads.try_emplace(e.node.get(), gin[i]);
        if (!fresh) slot->second = add(slot->second, gin[i]);
      } else if (e.leaf) {
        accumulate_leaf(e.leaf, gin[i]);
      }
    }
  }
}

}  // namespace nanorlhf::autograd

namespace nanorlhf {

void Tensor::backward(const Tensor &gradient, bool retain_graph) const {
  Tensor g = gradient;
  if (!g.defined()) {
    NR_CHECK(numel() == 1, "backward() on a tensor of shape {} needs the gradient of the output "
             "(only a one-element output gets the implicit gradient 1)", shape_str(shape()));
    g = ones(shape(), {dtype(), device()});
  }
  NR_CHECK(g.shape() == shape(), "backward: gradient shape {} does not match the output shape {}",
           shape_str(g.shape()), shape_str(shape()));
  autograd::run_backward(*this, g, retain_graph);
}

}  // namespace nanorlhf
