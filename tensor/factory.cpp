// Creation functions: zeros, ones, full, arange, rand, randn, randint, from_vector.
#include <cmath>
#include <cstring>

#include "tensor/native.h"
#include "tensor/random.h"
#include "tensor/tensor.h"

namespace nanorlhf {

Tensor empty(const Shape &shape, TensorOptions opts) { return Tensor::empty(shape, opts); }
Tensor full(const Shape &shape, double value, TensorOptions opts) {
  bool rg = opts.requires_grad;
  opts.requires_grad = false;
  Tensor t = Tensor::empty(shape, opts);
  native::fill_(t, value);
  if (rg) t.requires_grad_(true);
  return t;
}
Tensor zeros(const Shape &shape, TensorOptions opts) { return full(shape, 0.0, opts); }
Tensor ones(const Shape &shape, TensorOptions opts) { return full(shape, 1.0, opts); }
Tensor zeros_like(const Tensor &t) { return zeros(t.shape(), {t.dtype(), t.device()}); }
Tensor ones_like(const Tensor &t) { return ones(t.shape(), {t.dtype(), t.device()}); }
Tensor full_like(const Tensor &t, double v) { return full(t.shape(), v, {t.dtype(), t.device()}); }

Tensor arange(double end, TensorOptions opts) { return arange(0, end, 1, opts); }
Tensor arange(double start, double end, double step, TensorOptions opts) {
  NR_CHECK(step != 0, "arange: step must be nonzero");
  int64_t n = std::max<int64_t>(0, (int64_t)std::ceil((end - start) / step));
  Tensor cpu = Tensor::empty({n}, {opts.dtype, Device::cpu()});
  for (int64_t i = 0; i < n; ++i) {
    double v = start + i * step;
    switch (opts.dtype) {
      case kFloat32: cpu.data_ptr<float>()[i] = (float)v; break;
      case kFloat64: cpu.data_ptr<double>()[i] = v; break;
      case kInt32: cpu.data_ptr<int32_t>()[i] = (int32_t)v; break;
      case kInt64: cpu.data_ptr<int64_t>()[i] = (int64_t)v; break;
      case kBool: cpu.data_ptr<uint8_t>()[i] = v != 0; break;
    }
  }
  Tensor t = native::to_device(cpu, opts.device);
  if (opts.requires_grad) t.requires_grad_(true);
  return t;
}

Tensor rand(const Shape &shape, TensorOptions opts) { return native::uniform(shape, opts, 0.0, 1.0); }
Tensor randn(const Shape &shape, TensorOptions opts) { return native::normal(shape, opts, 0.0, 1.0); }

Tensor randint(int64_t low, int64_t high, const Shape &shape, TensorOptions opts) {
  NR_CHECK(high > low, "randint: need low < high, got [{}, {})", low, high);
  Tensor u = native::uniform(shape, {kFloat64, Device::cpu()}, 0.0, 1.0);
  Tensor out = Tensor::empty(shape, {kInt64, Device::cpu()});
  const double *pu = u.data_ptr<double>();
  int64_t *po = out.data_ptr<int64_t>();
  for (int64_t i = 0; i < out.numel(); ++i)
    po[i] = std::min(high - 1, low + (int64_t)std::floor(pu[i] * (double)(high - low)));
  return native::to_device(native::cast(out, opts.dtype), opts.device);
}

template <class T> Tensor from_vector(const std::vector<T> &values, const Shape &shape, TensorOptions opts) {
  NR_CHECK((int64_t)values.size() == shape_numel(shape), "from_vector: {} values do not fill shape {}",
           values.size(), shape_str(shape));
  Tensor t = Tensor::empty(shape, {dtype_of<T>(), Device::cpu()});
  if (!values.empty()) std::memcpy(t.raw_data(), values.data(), values.size() * sizeof(T));
  t = native::to_device(native::cast(t, opts.dtype), opts.device);
  if (opts.requires_grad) t.requires_grad_(true);
  return t;
}
template Tensor from_vector<float>(const std::vector<float> &, const Shape &, TensorOptions);
template Tensor from_vector<double>(const std::vector<double> &, const Shape &, TensorOptions);
template Tensor from_vector<int32_t>(const std::vector<int32_t> &, const Shape &, TensorOptions);
template Tensor from_vector<int64_t>(const std::vector<int64_t> &, const Shape &, TensorOptions);
template Tensor from_vector<uint8_t>(const std::vector<uint8_t> &, const Shape &, TensorOptions);

Tensor tensor(std::initializer_list<double> values, TensorOptions opts) {
  return from_vector(std::vector<double>(values), {(int64_t)values.size()}, opts);
}
Tensor scalar_tensor(double value, TensorOptions opts) { return from_vector(std::vector<double>{value}, {}, opts); }

}  // namespace nanorlhf
