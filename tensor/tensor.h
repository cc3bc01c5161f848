// Tensor: a view (shape, strides, storage offset, dtype, device) into a shared Storage, plus the
// autograd fields (requires_grad, grad, grad_fn). Copying a Tensor copies the handle, as in PyTorch.
#pragma once
#include <cstdint>
#include <initializer_list>
#include <memory>
#include <ostream>
#include <string>
#include <vector>

#include "tensor/dtype.h"
#include "tensor/storage.h"

namespace nanorlhf {

namespace autograd { struct Node; }

using Shape = std::vector<int64_t>;
std::string shape_str(const Shape &s);  // "[2, 3]"

struct TensorOptions {
  DType dtype = DType::Float32;
  Device device = Device::cpu();
  bool requires_grad = false;
};

struct TensorImpl {
  std::shared_ptr<Storage> storage;
  Shape shape, strides;  // strides count elements
  int64_t offset = 0;    // in elements
  DType dtype = DType::Float32;
  bool requires_grad = false;        // leaf flag: gradients accumulate into `grad`
  std::shared_ptr<TensorImpl> grad;  // accumulated gradient of a leaf
  std::shared_ptr<autograd::Node> grad_fn;  // the op that made this tensor (null for leaves)
};

class Tensor {
 public:
  Tensor() = default;
  explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}
  // A fresh contiguous tensor with uninitialised memory.
  static Tensor empty(const Shape &shape, TensorOptions opts = {});

  bool defined() const { return impl_ != nullptr; }
  const Shape &shape() const { return impl().shape; }
  const Shape &sizes() const { return impl().shape; }
  const Shape &strides() const { return impl().strides; }
  int64_t size(int64_t dim) const;
  int64_t stride(int64_t dim) const;
  int64_t dim() const { return (int64_t)impl().shape.size(); }
  int64_t numel() const;
  int64_t offset() const { return impl().offset; }
  DType dtype() const { return impl().dtype; }
  Device device() const { return impl().storage->device(); }
  bool is_contiguous() const;
  bool is_cuda() const { return device().is_cuda(); }
  TensorImpl &impl() const;
  const std::shared_ptr<TensorImpl> &impl_ptr() const { return impl_; }
  const std::shared_ptr<Storage> &storage() const { return impl().storage; }
  bool is_same(const Tensor &o) const { return impl_ == o.impl_; }

  // Raw element pointer (storage + offset). Checks the dtype.
  template <class T> T *data_ptr() const;
  void *raw_data() const;

  // ---- autograd ----
  bool requires_grad() const;  // a leaf that requires grad, or the result of an op on one
  Tensor &requires_grad_(bool on = true);
  Tensor grad() const;  // undefined Tensor when no gradient has been accumulated
  void set_grad(const Tensor &g);
  void zero_grad();  // drops the gradient
  const std::shared_ptr<autograd::Node> &grad_fn() const { return impl().grad_fn; }
  bool is_leaf() const { return impl().grad_fn == nullptr; }
  // Reverse-mode sweep from this tensor; a non-scalar needs the gradient of the output.
  void backward(const Tensor &gradient = Tensor(), bool retain_graph = false) const;
  Tensor detach() const;  // same storage, no history

  // ---- views (no copies; differentiable) ----
  Tensor view(const Shape &shape) const;
  Tensor reshape(const Shape &shape) const;
  Tensor flatten(int64_t start = 0, int64_t end = -1) const;
  Tensor transpose(int64_t d0, int64_t d1) const;
  Tensor t() const { return transpose(0, 1); }
  Tensor permute(const Shape &dims) const;
  Tensor narrow(int64_t dim, int64_t start, int64_t length) const;
  Tensor select(int64_t dim, int64_t index) const;  // removes dim
  Tensor expand(const Shape &shape) const;
  Tensor unsqueeze(int64_t dim) const;
  Tensor squeeze(int64_t dim) const;
  Tensor squeeze() const;
  Tensor contiguous() const;
  Tensor clone() const;

  // ---- devices and dtypes (differentiable between float dtypes / devices) ----
  Tensor to(Device device) const;
  Tensor to(DType dtype) const;
  Tensor cpu() const { return to(Device::cpu()); }
  Tensor cuda(int index = 0) const { return to(Device::cuda(index)); }

  // ---- common methods (same as the free functions) ----
  Tensor sum() const;
  Tensor sum(const Shape &dims, bool keepdim = false) const;
  Tensor mean() const;
  Tensor mean(const Shape &dims, bool keepdim = false) const;
  Tensor exp() const;
  Tensor log() const;
  Tensor pow(double p) const;
  Tensor sqrt() const;
  Tensor abs() const;
  Tensor softmax(int64_t dim) const;
  Tensor log_softmax(int64_t dim) const;
  Tensor matmul(const Tensor &o) const;
  Tensor masked_fill(const Tensor &mask, double value) const;

  // ---- host access ----
  double item() const;  // a one-element tensor, any dtype, any device
  template <class T> std::vector<T> to_vector() const;  // contiguous copy on the host
  void fill_(double value);   // in place, no autograd (for initialisation and optimizers)
  void copy_(const Tensor &src);  // in place, same shape and dtype, any devices; no autograd
  Tensor operator[](int64_t i) const { return select(0, i); }

 private:
  std::shared_ptr<TensorImpl> impl_;
};

std::ostream &operator<<(std::ostream &os, const Tensor &t);

// ---- creation (tensor/factory.cpp) ----
Tensor empty(const Shape &shape, TensorOptions opts = {});
Tensor zeros(const Shape &shape, TensorOptions opts = {});
Tensor ones(const Shape &shape, TensorOptions opts = {});
Tensor full(const Shape &shape, double value, TensorOptions opts = {});
Tensor zeros_like(const Tensor &t);
Tensor ones_like(const Tensor &t);
Tensor full_like(const Tensor &t, double value);
Tensor arange(double end, TensorOptions opts = {});
Tensor arange(double start, double end, double step = 1, TensorOptions opts = {});
// Random draws come from the Philox stream of the global seed (tensor/random.h).
Tensor rand(const Shape &shape, TensorOptions opts = {});   // U[0, 1)
Tensor randn(const Shape &shape, TensorOptions opts = {});  // N(0, 1)
Tensor randint(int64_t low, int64_t high, const Shape &shape, TensorOptions opts = {.dtype = DType::Int64});
template <class T>
Tensor from_vector(const std::vector<T> &values, const Shape &shape, TensorOptions opts = {dtype_of<T>()});
Tensor tensor(std::initializer_list<double> values, TensorOptions opts = {});  // 1-D
Tensor scalar_tensor(double value, TensorOptions opts = {});                   // 0-D

// Contiguous strides for a shape.
Shape contiguous_strides(const Shape &shape);
int64_t shape_numel(const Shape &shape);
// Wrap a possibly negative dim into [0, ndim); throws naming the op and the shape.
int64_t wrap_dim(int64_t dim, int64_t ndim, const char *op);

}  // namespace nanorlhf
