// Raw elementwise ops with broadcasting, casts, device copies and fills.
#include <cstring>

#include "kernels/cpu/elementwise.h"
#include "tensor/dispatch.h"
#include "tensor/native.h"
#include "tensor/random.h"

namespace nanorlhf::native {

namespace cpu = kernels::cpu;

Shape broadcast_shapes(const Shape &a, const Shape &b, const char *op) {
  size_t n = std::max(a.size(), b.size());
  Shape out(n);
  for (size_t i = 0; i < n; ++i) {
    int64_t da = i < n - a.size() ? 1 : a[i - (n - a.size())];
    int64_t db = i < n - b.size() ? 1 : b[i - (n - b.size())];
    NR_CHECK(da == db || da == 1 || db == 1, "{}: shapes {} and {} cannot be broadcast together", op,
             shape_str(a), shape_str(b));
    out[i] = da == 1 ? db : da;
  }
  return out;
}

Shape broadcast_strides(const Tensor &t, const Shape &shape) {
  size_t n = shape.size(), k = t.shape().size();
  Shape st(n, 0);
  for (size_t i = 0; i < k; ++i) {
    size_t o = n - k + i;
    st[o] = t.shape()[i] == 1 && shape[o] != 1 ? 0 : t.strides()[i];
  }
  return st;
}

void check_same(const Tensor &a, const Tensor &b, const char *op, bool same_dtype) {
  NR_CHECK(a.device() == b.device(), "{}: tensors are on different devices ({} and {})", op, a.device().str(),
           b.device().str());
  NR_CHECK(!same_dtype || a.dtype() == b.dtype(), "{}: dtype mismatch ({} and {})", op, dtype_name(a.dtype()),
           dtype_name(b.dtype()));
}

Tensor contiguous(const Tensor &x) {
  Tensor out = Tensor::empty(x.shape(), {x.dtype(), x.device()});
  if (x.numel() == 0) return out;
  if (x.is_contiguous()) {
    copy_bytes(out.raw_data(), out.device(), x.raw_data(), x.device(), x.numel() * itemsize(x.dtype()));
    return out;
  }
  int nd = (int)x.dim();
  if (x.is_cuda()) {
    NR_CUDA(kernels::cuda::copy_strided(nd, x.shape().data(), x.raw_data(), x.strides().data(), out.raw_data(),
                                        (int)itemsize(x.dtype())));
  } else {
    visit_all(x.dtype(), [&](auto tag) {
      using T = decltype(tag);
      cpu::copy_strided<T>(nd, x.shape().data(), (const T *)x.raw_data(), x.strides().data(), (T *)out.raw_data());
    });
  }
  return out;
}

Tensor cast(const Tensor &x, DType dtype) {
  if (x.dtype() == dtype) return x;
  Tensor src = x.is_contiguous() ? x : contiguous(x);
  Tensor out = Tensor::empty(x.shape(), {dtype, x.device()});
  int64_t n = x.numel();
  if (x.is_cuda()) {
    NR_CUDA({
      namespace cu = kernels::cuda;
      if (x.dtype() == kFloat32 && dtype == kInt64) cu::cast_f32_i64(src.data_ptr<float>(), out.data_ptr<int64_t>(), n);
      else if (x.dtype() == kInt64 && dtype == kFloat32) cu::cast_i64_f32(src.data_ptr<int64_t>(), out.data_ptr<float>(), n);
      else if (x.dtype() == kBool && dtype == kFloat32) cu::cast_u8_f32(src.data_ptr<uint8_t>(), out.data_ptr<float>(), n);
      else return to_device(cast(to_device(src, Device::cpu()), dtype), x.device());  // rare casts go via the host
    });
    return out;
  }
  visit_all(x.dtype(), [&](auto s) {
    using S = decltype(s);
    visit_all(dtype, [&](auto d) {
      using D = decltype(d);
      cpu::cast<S, D>((const S *)src.raw_data(), (D *)out.raw_data(), n);
    });
  });
  return out;
}

Tensor to_device(const Tensor &x, Device device) {
  if (x.device() == device) return x;
  Tensor src = x.is_contiguous() ? x : contiguous(x);
  Tensor out = Tensor::empty(x.shape(), {x.dtype(), device});
  copy_bytes(out.raw_data(), device, src.raw_data(), src.device(), x.numel() * itemsize(x.dtype()));
  return out;
}

void fill_(const Tensor &x, double v) {
  NR_CHECK(x.is_contiguous(), "fill_: needs a contiguous tensor, got strides {}", shape_str(x.strides()));
  int64_t n = x.numel();
  if (x.is_cuda()) {
    NR_CUDA({
      if (x.dtype() == kFloat32) kernels::cuda::fill(x.data_ptr<float>(), n, (float)v);
      else if (x.dtype() == kInt64) kernels::cuda::fill_i64(x.data_ptr<int64_t>(), n, (int64_t)v);
      else { Tensor h = full(x.shape(), v, {x.dtype()}); copy_(x, h); }
    });
    return;
  }
  visit_all(x.dtype(), [&](auto tag) {
    using T = decltype(tag);
    cpu::fill<T>((T *)x.raw_data(), n, (T)v);
  });
}

void copy_(const Tensor &dst, const Tensor &src) {
  NR_CHECK(dst.shape() == src.shape(), "copy_: shapes {} and {} differ", shape_str(dst.shape()), shape_str(src.shape()));
  NR_CHECK(dst.is_contiguous(), "copy_: destination must be contiguous");
  Tensor s = cast(src, dst.dtype());
  if (!s.is_contiguous()) s = contiguous(s);
  copy_bytes(dst.raw_data(), dst.device(), s.raw_data(), s.device(), dst.numel() * itemsize(dst.dtype()));
}

Tensor unary(UnaryOp op, const Tensor &x, double alpha, double beta) {
  Tensor src = x.is_contiguous() ? x : contiguous(x);
  Tensor out = Tensor::empty(x.shape(), {x.dtype(), x.device()});
  if (x.is_cuda()) {
    check_cuda_f32(x, "unary op");
    NR_CUDA(kernels::cuda::unary(op, src.data_ptr<float>(), out.data_ptr<float>(), x.numel(), alpha, beta));
    return out;
  }
  visit_float(x.dtype(), "elementwise op", [&](auto tag) {
    using T = decltype(tag);
    cpu::unary<T>(op, (const T *)src.raw_data(), (T *)out.raw_data(), x.numel(), alpha, beta);
  });
  return out;
}

Tensor binary(BinaryOp op, const Tensor &a, const Tensor &b) {
  check_same(a, b, "binary op");
  Shape shape = broadcast_shapes(a.shape(), b.shape(), "binary op");
  Shape sa = broadcast_strides(a, shape), sb = broadcast_strides(b, shape);
  Tensor out = Tensor::empty(shape, {a.dtype(), a.device()});
  if (out.numel() == 0) return out;
  int nd = (int)shape.size();
  if (a.is_cuda()) {
    check_cuda_f32(a, "binary op");
    NR_CUDA(kernels::cuda::binary(op, nd, shape.data(), a.data_ptr<float>(), sa.data(), b.data_ptr<float>(), sb.data(),
                                  out.data_ptr<float>()));
    return out;
  }
  visit_float(a.dtype(), "binary op", [&](auto tag) {
    using T = decltype(tag);
    cpu::binary<T>(op, nd, shape.data(), (const T *)a.raw_data(), sa.data(), (const T *)b.raw_data(), sb.data(),
                   (T *)out.raw_data());
  });
  return out;
}

Tensor compare(CompareOp op, const Tensor &a, const Tensor &b) {
  check_same(a, b, "comparison");
  Shape shape = broadcast_shapes(a.shape(), b.shape(), "comparison");
  Shape sa = broadcast_strides(a, shape), sb = broadcast_strides(b, shape);
  Tensor out = Tensor::empty(shape, {kBool, a.device()});
  if (out.numel() == 0) return out;
  int nd = (int)shape.size();
  if (a.is_cuda()) {
    check_cuda_f32(a, "comparison");
    NR_CUDA(kernels::cuda::compare(op, nd, shape.data(), a.data_ptr<float>(), sa.data(), b.data_ptr<float>(),
                                   sb.data(), out.data_ptr<uint8_t>()));
    return out;
  }
  if (!is_floating(a.dtype())) {  // ids: compare as float64 (exact for |ids| < 2^53)
    return compare(op, cast(a, kFloat64), cast(b, kFloat64));
  }
  visit_float(a.dtype(), "comparison", [&](auto tag) {
    using T = decltype(tag);
    cpu::compare<T>(op, nd, shape.data(), (const T *)a.raw_data(), sa.data(), (const T *)b.raw_data(), sb.data(),
                    out.data_ptr<uint8_t>());
  });
  return out;
}

Tensor where(const Tensor &cond, const Tensor &a, const Tensor &b) {
  NR_CHECK(cond.dtype() == kBool, "where: condition must be bool, got {}", dtype_name(cond.dtype()));
  check_same(a, b, "where");
  check_same(cond, a, "where", false);
  Shape shape = broadcast_shapes(broadcast_shapes(cond.shape(), a.shape(), "where"), b.shape(), "where");
  Shape sc = broadcast_strides(cond, shape), sa = broadcast_strides(a, shape), sb = broadcast_strides(b, shape);
  Tensor out = Tensor::empty(shape, {a.dtype(), a.device()});
  if (out.numel() == 0) return out;
  int nd = (int)shape.size();
  if (a.is_cuda()) {
    check_cuda_f32(a, "where");
    NR_CUDA(kernels::cuda::where(nd, shape.data(), cond.data_ptr<uint8_t>(), sc.data(), a.data_ptr<float>(), sa.data(),
                                 b.data_ptr<float>(), sb.data(), out.data_ptr<float>()));
    return out;
  }
  visit_float(a.dtype(), "where", [&](auto tag) {
    using T = decltype(tag);
    cpu::where<T>(nd, shape.data(), cond.data_ptr<uint8_t>(), sc.data(), (const T *)a.raw_data(), sa.data(),
                  (const T *)b.raw_data(), sb.data(), (T *)out.raw_data());
  });
  return out;
}

Tensor uniform(const Shape &shape, TensorOptions opts, double low, double high) {
  bool rg = opts.requires_grad;
  Tensor out = Tensor::empty(shape, {opts.dtype, opts.device});
  uint64_t seed = initial_seed(), off = philox_reserve(out.numel());
  if (opts.device.is_cuda()) {
    check_cuda_f32(out, "rand");
    NR_CUDA(kernels::cuda::uniform(out.data_ptr<float>(), out.numel(), seed, off, low, high));
  } else {
    visit_float(opts.dtype, "rand", [&](auto tag) {
      using T = decltype(tag);
      cpu::uniform<T>((T *)out.raw_data(), out.numel(), seed, off, low, high);
    });
  }
  if (rg) out.requires_grad_(true);
  return out;
}

Tensor normal(const Shape &shape, TensorOptions opts, double mean, double std) {
  bool rg = opts.requires_grad;
  Tensor out = Tensor::empty(shape, {opts.dtype, opts.device});
  uint64_t seed = initial_seed(), off = philox_reserve(out.numel());
  if (opts.device.is_cuda()) {
    check_cuda_f32(out, "randn");
    NR_CUDA(kernels::cuda::normal(out.data_ptr<float>(), out.numel(), seed, off, mean, std));
  } else {
    visit_float(opts.dtype, "randn", [&](auto tag) {
      using T = decltype(tag);
      cpu::normal<T>((T *)out.raw_data(), out.numel(), seed, off, mean, std);
    });
  }
  if (rg) out.requires_grad_(true);
  return out;
}

}  // namespace nanorlhf::native
