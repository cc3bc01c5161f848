// Tensor basics: construction, shape queries, raw data access, host copies and printing.
#include "tensor/tensor.h"

#include <cstring>
#include <sstream>

#include "tensor/native.h"

namespace nanorlhf {

std::string shape_str(const Shape &s) { return fmt::format("[{}]", fmt::join(s, ", ")); }

Shape contiguous_strides(const Shape &shape) {
  Shape st(shape.size());
  int64_t acc = 1;
  for (int64_t i = (int64_t)shape.size() - 1; i >= 0; --i) {
    st[i] = acc;
    acc *= std::max<int64_t>(shape[i], 1);
  }
  return st;
}

int64_t shape_numel(const Shape &shape) {
  int64_t n = 1;
  for (auto s : shape) n *= s;
  return n;
}

int64_t wrap_dim(int64_t dim, int64_t ndim, const char *op) {
  int64_t n = std::max<int64_t>(ndim, 1);
  NR_CHECK(dim >= -n && dim < n, "{}: dim {} is out of range for a tensor with {} dims", op, dim, ndim);
  return dim < 0 ? dim + n : dim;
}

Tensor Tensor::empty(const Shape &shape, TensorOptions opts) {
  NR_CHECK(shape.size() <= (size_t)kernels::kMaxDims, "tensors have at most {} dims, got shape {}",
           kernels::kMaxDims, shape_str(shape));
  for (auto s : shape) NR_CHECK(s >= 0, "negative size in shape {}", shape_str(shape));
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = std::make_shared<Storage>(shape_numel(shape) * itemsize(opts.dtype), opts.device);
  impl->shape = shape;
  impl->strides = contiguous_strides(shape);
  impl->dtype = opts.dtype;
  impl->requires_grad = opts.requires_grad;
  NR_CHECK(!opts.requires_grad || is_floating(opts.dtype), "only floating-point tensors can require grad, got {}",
           dtype_name(opts.dtype));
  return Tensor(impl);
}

TensorImpl &Tensor::impl() const {
  NR_CHECK(impl_ != nullptr, "use of an undefined (empty) Tensor");
  return *impl_;
}

int64_t Tensor::size(int64_t d) const { return shape()[wrap_dim(d, dim(), "size")]; }
int64_t Tensor::stride(int64_t d) const { return strides()[wrap_dim(d, dim(), "stride")]; }
int64_t Tensor::numel() const { return shape_numel(shape()); }

bool Tensor::is_contiguous() const {
  int64_t acc = 1;
  for (int64_t i = dim() - 1; i >= 0; --i) {
    if (shape()[i] != 1 && strides()[i] != acc) return false;
    acc *= shape()[i];
  }
  return true;
}

void *Tensor::raw_data() const {
  return static_cast<char *>(impl().storage->data()) + impl().offset * itemsize(dtype());
}

template <class T> T *Tensor::data_ptr() const {
  NR_CHECK(dtype_of<T>() == dtype(), "data_ptr: tensor has dtype {}, asked for {}", dtype_name(dtype()),
           dtype_name(dtype_of<T>()));
  return static_cast<T *>(raw_data());
}
template float *Tensor::data_ptr<float>() const;
template double *Tensor::data_ptr<double>() const;
template int32_t *Tensor::data_ptr<int32_t>() const;
template int64_t *Tensor::data_ptr<int64_t>() const;
template uint8_t *Tensor::data_ptr<uint8_t>() const;

template <class T> std::vector<T> Tensor::to_vector() const {
  Tensor h = native::cast(native::to_device(*this, Device::cpu()), dtype_of<T>());
  if (!h.is_contiguous()) h = native::contiguous(h);
  std::vector<T> out(h.numel());
  if (!out.empty()) std::memcpy(out.data(), h.raw_data(), out.size() * sizeof(T));
  return out;
}
template std::vector<float> Tensor::to_vector<float>() const;
template std::vector<double> Tensor::to_vector<double>() const;
template std::vector<int32_t> Tensor::to_vector<int32_t>() const;
template std::vector<int64_t> Tensor::to_vector<int64_t>() const;
template std::vector<uint8_t> Tensor::to_vector<uint8_t>() const;

double Tensor::item() const {
  NR_CHECK(numel() == 1, "item() needs a one-element tensor, got shape {}", shape_str(shape()));
  return to_vector<double>()[0];
}

void Tensor::fill_(double value) { native::fill_(*this, value); }
void Tensor::copy_(const Tensor &src) { native::copy_(*this, src); }

// ---- autograd fields ----
bool Tensor::requires_grad() const { return impl().requires_grad || impl().grad_fn != nullptr; }
Tensor &Tensor::requires_grad_(bool on) {
  NR_CHECK(is_leaf(), "requires_grad_() can only change leaf tensors (this one was made by an op)");
  NR_CHECK(!on || is_floating(dtype()), "only floating-point tensors can require grad, got {}", dtype_name(dtype()));
  impl().requires_grad = on;
  return *this;
}
Tensor Tensor::grad() const { return impl().grad ? Tensor(impl().grad) : Tensor(); }
void Tensor::set_grad(const Tensor &g) { impl().grad = g.defined() ? g.impl_ptr() : nullptr; }
void Tensor::zero_grad() { impl().grad = nullptr; }

Tensor Tensor::detach() const {
  auto impl2 = std::make_shared<TensorImpl>();
  impl2->storage = impl().storage;
  impl2->shape = impl().shape;
  impl2->strides = impl().strides;
  impl2->offset = impl().offset;
  impl2->dtype = impl().dtype;
  return Tensor(impl2);
}

std::ostream &operator<<(std::ostream &os, const Tensor &t) {
  if (!t.defined()) return os << "Tensor(undefined)";
  os << "Tensor(shape=" << shape_str(t.shape()) << ", dtype=" << dtype_name(t.dtype())
     << ", device=" << t.device().str();
  if (t.numel() <= 64) {
    auto v = t.to_vector<double>();
    os << ", values=[";
    for (size_t i = 0; i < v.size(); ++i) os << (i ? ", " : "") << v[i];
    os << "]";
  }
  return os << ")";
}

}  // namespace nanorlhf
