// Raw fused nn ops (softmax, layer_norm, cross_entropy, embedding rows, gather) and cat.
#include "kernels/cpu/nn_kernels.h"
#include "tensor/dispatch.h"
#include "tensor/native.h"

namespace nanorlhf::native {

namespace cpu = kernels::cpu;

namespace {

// A raw (no autograd) view with new shape/strides on the same storage.
Tensor raw_view(const Tensor &t, const Shape &shape, const Shape &strides) {
  auto impl = std::make_shared<TensorImpl>(*t.impl_ptr());
  impl->grad_fn = nullptr; impl->grad = nullptr; impl->requires_grad = false;
  impl->shape = shape;
  impl->strides = strides;
  return Tensor(impl);
}
Tensor raw_transpose(const Tensor &t, int64_t a, int64_t b) {
  Shape s = t.shape(), st = t.strides();
  std::swap(s[a], s[b]);
  std::swap(st[a], st[b]);
  return raw_view(t, s, st);
}
Tensor contig(const Tensor &t) { return t.is_contiguous() ? t : contiguous(t); }

}  // namespace

Tensor softmax(const Tensor &x_in, int64_t dim, bool log) {
  int64_t d = wrap_dim(dim, x_in.dim(), "softmax"), last = std::max<int64_t>(x_in.dim() - 1, 0);
  Tensor x = contig(d == last ? x_in : raw_transpose(x_in, d, last));
  int64_t cols = x.dim() ? x.shape()[last] : 1, rows = cols ? x.numel() / cols : 0;
  Tensor y = Tensor::empty(x.shape(), {x.dtype(), x.device()});
  if (x.numel() > 0) {
    if (x.is_cuda()) {
      check_cuda_f32(x, "softmax");
      NR_CUDA(log ? kernels::cuda::log_softmax_forward(x.data_ptr<float>(), y.data_ptr<float>(), rows, cols)
                  : kernels::cuda::softmax_forward(x.data_ptr<float>(), y.data_ptr<float>(), rows, cols));
    } else {
      visit_float(x.dtype(), "softmax", [&](auto tag) {
        using T = decltype(tag);
        if (log) cpu::log_softmax_forward<T>((const T *)x.raw_data(), (T *)y.raw_data(), rows, cols);
        else cpu::softmax_forward<T>((const T *)x.raw_data(), (T *)y.raw_data(), rows, cols);
      });
    }
  }
  return d == last ? y : raw_transpose(y, d, last);
}

Tensor softmax_backward(const Tensor &y_in, const Tensor &dy_in, int64_t dim, bool log) {
  int64_t d = wrap_dim(dim, y_in.dim(), "softmax"), last = std::max<int64_t>(y_in.dim() - 1, 0);
  Tensor y = contig(d == last ? y_in : raw_transpose(y_in, d, last));
  Tensor dy = contig(d == last ? dy_in : raw_transpose(dy_in, d, last));
  int64_t cols = y.dim() ? y.shape()[last] : 1, rows = cols ? y.numel() / cols : 0;
  Tensor dx = Tensor::empty(y.shape(), {y.dtype(), y.device()});
  if (y.numel() > 0) {
    if (y.is_cuda()) {
      NR_CUDA(log ? kernels::cuda::log_softmax_backward(y.data_ptr<float>(), dy.data_ptr<float>(), dx.data_ptr<float>(), rows, cols)
                  : kernels::cuda::softmax_backward(y.data_ptr<float>(), dy.data_ptr<float>(), dx.data_ptr<float>(), rows, cols));
    } else {
      visit_float(y.dtype(), "softmax backward", [&](auto tag) {
        using T = decltype(tag);
        if (log) cpu::log_softmax_backward<T>((const T *)y.raw_data(), (const T *)dy.raw_data(), (T *)dx.raw_data(), rows, cols);
        else cpu::softmax_backward<T>((const T *)y.raw_data(), (const T *)dy.raw_data(), (T *)dx.raw_data(), rows, cols);
      });
    }
  }
  return d == last ? dx : raw_transpose(dx, d, last);
}

std::tuple<Tensor, Tensor, Tensor> layer_norm(const Tensor &x_in, const Tensor &w, const Tensor &b, double eps) {
  NR_CHECK(x_in.dim() >= 1, "layer_norm: input must have at least 1 dim");
  int64_t cols = x_in.shape().back(), rows = cols ? x_in.numel() / cols : 0;
  for (const Tensor *p : {&w, &b})
    if (p->defined()) {
      NR_CHECK(p->shape() == Shape{cols}, "layer_norm: weight/bias shape {} does not match normalized shape [{}] of input {}",
               shape_str(p->shape()), cols, shape_str(x_in.shape()));
      check_same(x_in, *p, "layer_norm");
    }
  Tensor x = contig(x_in), wc = w.defined() ? contig(w) : w, bc = b.defined() ? contig(b) : b;
  Tensor y = Tensor::empty(x.shape(), {x.dtype(), x.device()});
  Shape stat_shape(x.shape().begin(), x.shape().end() - 1);
  Tensor mean = Tensor::empty(stat_shape, {x.dtype(), x.device()}), rstd = Tensor::empty(stat_shape, {x.dtype(), x.device()});
  if (rows == 0) return {y, mean, rstd};
  if (x.is_cuda()) {
    check_cuda_f32(x, "layer_norm");
    NR_CUDA(kernels::cuda::layer_norm_forward(x.data_ptr<float>(), wc.defined() ? wc.data_ptr<float>() : nullptr,
                                              bc.defined() ? bc.data_ptr<float>() : nullptr, y.data_ptr<float>(),
                                              mean.data_ptr<float>(), rstd.data_ptr<float>(), rows, cols, eps));
  } else {
    visit_float(x.dtype(), "layer_norm", [&](auto tag) {
      using T = decltype(tag);
      cpu::layer_norm_forward<T>((const T *)x.raw_data(), wc.defined() ? (const T *)wc.raw_data() : nullptr,
                                 bc.defined() ? (const T *)bc.raw_data() : nullptr, (T *)y.raw_data(),
                                 (T *)mean.raw_data(), (T *)rstd.raw_data(), rows, cols, eps);
    });
  }
  return {y, mean, rstd};
}

std::tuple<Tensor, Tensor, Tensor> layer_norm_backward(const Tensor &dy_in, const Tensor &x_in, const Tensor &w,
                                                        const Tensor &mean, const Tensor &rstd) {
  int64_t cols = x_in.shape().back(), rows = cols ? x_in.numel() / cols : 0;
  Tensor dy = contig(dy_in), x = contig(x_in), wc = w.defined() ? contig(w) : w;
  Tensor dx = Tensor::empty(x.shape(), {x.dtype(), x.device()});
  Tensor dw = Tensor::empty({cols}, {x.dtype(), x.device()}), db = Tensor::empty({cols}, {x.dtype(), x.device()});
  if (rows == 0) { fill_(dw, 0); fill_(db, 0); return {dx, dw, db}; }
  if (x.is_cuda()) {
    NR_CUDA(kernels::cuda::layer_norm_backward(dy.data_ptr<float>(), x.data_ptr<float>(),
                                               wc.defined() ? wc.data_ptr<float>() : nullptr, mean.data_ptr<float>(),
                                               rstd.data_ptr<float>(), dx.data_ptr<float>(), dw.data_ptr<float>(),
                                               db.data_ptr<float>(), rows, cols));
  } else {
    visit_float(x.dtype(), "layer_norm backward", [&](auto tag) {
      using T = decltype(tag);
      cpu::layer_norm_backward<T>((const T *)dy.raw_data(), (const T *)x.raw_data(),
                                  wc.defined() ? (const T *)wc.raw_data() : nullptr, (const T *)mean.raw_data(),
                                  (const T *)rstd.raw_data(), (T *)dx.raw_data(), (T *)dw.raw_data(), (T *)db.raw_data(),
                                  rows, cols);
    });
  }
  return {dx, dw, db};
}

std::pair<Tensor, Tensor> cross_entropy(const Tensor &logits_in, const Tensor &target_in, int64_t ignore_index) {
  NR_CHECK(logits_in.dim() == 2, "cross_entropy: logits must be [N, V], got {}", shape_str(logits_in.shape()));
  NR_CHECK(target_in.dtype() == kInt64 || target_in.dtype() == kInt32, "cross_entropy: targets must be int64, got {}",
           dtype_name(target_in.dtype()));
  int64_t N = logits_in.shape()[0], V = logits_in.shape()[1];
  NR_CHECK(target_in.shape() == Shape{N}, "cross_entropy: logits {} need targets [{}], got {}",
           shape_str(logits_in.shape()), N, shape_str(target_in.shape()));
  check_same(logits_in, target_in, "cross_entropy", false);
  Tensor target = contig(cast(target_in, kInt64));
  {  // Bad targets are user errors, never out-of-bounds reads.
    auto t = target.to_vector<int64_t>();
    for (int64_t i = 0; i < N; ++i)
      NR_CHECK(t[i] == ignore_index || (t[i] >= 0 && t[i] < V),
               "cross_entropy: target {} at position {} is out of range for {} classes", t[i], i, V);
  }
  Tensor logits = contig(logits_in);
  Tensor loss = Tensor::empty({N}, {logits.dtype(), logits.device()}), lse = Tensor::empty({N}, {logits.dtype(), logits.device()});
  if (N == 0) return {loss, lse};
  if (logits.is_cuda()) {
    check_cuda_f32(logits, "cross_entropy");
    NR_CUDA(kernels::cuda::cross_entropy_forward(logits.data_ptr<float>(), target.data_ptr<int64_t>(), loss.data_ptr<float>(),
                                                 lse.data_ptr<float>(), N, V, ignore_index));
  } else {
    visit_float(logits.dtype(), "cross_entropy", [&](auto tag) {
      using T = decltype(tag);
      cpu::cross_entropy_forward<T>((const T *)logits.raw_data(), target.data_ptr<int64_t>(), (T *)loss.raw_data(),
                                    (T *)lse.raw_data(), N, V, ignore_index);
    });
  }
  return {loss, lse};
}

Tensor cross_entropy_backward(const Tensor &logits_in, const Tensor &target_in, const Tensor &lse, const Tensor &dloss_in,
                              int64_t ignore_index) {
  int64_t N = logits_in.shape()[0], V = logits_in.shape()[1];
  Tensor logits = contig(logits_in), target = contig(cast(target_in, kInt64)), dloss = contig(dloss_in);
  Tensor dlogits = Tensor::empty({N, V}, {logits.dtype(), logits.device()});
  if (N == 0) return dlogits;
  if (logits.is_cuda()) {
    NR_CUDA(kernels::cuda::cross_entropy_backward(logits.data_ptr<float>(), target.data_ptr<int64_t>(), lse.data_ptr<float>(),
                                                  dloss.data_ptr<float>(), dlogits.data_ptr<float>(), N, V, ignore_index));
  } else {
    visit_float(logits.dtype(), "cross_entropy backward", [&](auto tag) {
      using T = decltype(tag);
      cpu::cross_entropy_backward<T>((const T *)logits.raw_data(), target.data_ptr<int64_t>(), (const T *)lse.raw_data(),
                                     (const T *)dloss.raw_data(), (T *)dlogits.raw_data(), N, V, ignore_index);
    });
  }
  return dlogits;
}

namespace {
Tensor checked_indices(const Tensor &idx, int64_t limit, const char *op) {
  NR_CHECK(idx.dtype() == kInt64 || idx.dtype() == kInt32, "{}: indices must be int64, got {}", op, dtype_name(idx.dtype()));
  Tensor i = contig(cast(idx, kInt64));
  auto v = i.to_vector<int64_t>();
  for (size_t k = 0; k < v.size(); ++k)
    NR_CHECK(v[k] >= 0 && v[k] < limit, "{}: index {} at position {} is out of range [0, {})", op, v[k], k, limit);
  return i;
}
}  // namespace

Tensor index_select_rows(const Tensor &weight_in, const Tensor &idx_in) {
  NR_CHECK(weight_in.dim() == 2, "embedding: weight must be [num, dim], got {}", shape_str(weight_in.shape()));
  check_same(weight_in, idx_in, "embedding", false);
  int64_t num = weight_in.shape()[0], D = weight_in.shape()[1];
  Tensor idx = checked_indices(idx_in, num, "embedding"), weight = contig(weight_in);
  Shape out_shape = idx_in.shape();
  out_shape.push_back(D);
  Tensor out = Tensor::empty(out_shape, {weight.dtype(), weight.device()});
  int64_t n = idx.numel();
  if (n == 0) return out;
  if (weight.is_cuda()) {
    check_cuda_f32(weight, "embedding");
    NR_CUDA(kernels::cuda::index_select_rows(weight.data_ptr<float>(), idx.data_ptr<int64_t>(), out.data_ptr<float>(), n, D));
  } else {
    visit_float(weight.dtype(), "embedding", [&](auto tag) {
      using T = decltype(tag);
      cpu::index_select_rows<T>((const T *)weight.raw_data(), idx.data_ptr<int64_t>(), (T *)out.raw_data(), n, D);
    });
  }
  return out;
}

Tensor index_add_rows(const Tensor &dout_in, const Tensor &idx_in, int64_t num) {
  int64_t D = dout_in.shape().back(), n = idx_in.numel();
  Tensor dout = contig(dout_in), idx = contig(cast(idx_in, kInt64));
  Tensor dw = Tensor::empty({num, D}, {dout.dtype(), dout.device()});
  fill_(dw, 0);
  if (n == 0) return dw;
  if (dout.is_cuda()) {
    NR_CUDA(kernels::cuda::index_add_rows(dout.data_ptr<float>(), idx.data_ptr<int64_t>(), dw.data_ptr<float>(), n, D));
  } else {
    visit_float(dout.dtype(), "embedding backward", [&](auto tag) {
      using T = decltype(tag);
      cpu::index_add_rows<T>((const T *)dout.raw_data(), idx.data_ptr<int64_t>(), (T *)dw.raw_data(), n, D);
    });
  }
  return dw;
}

Tensor gather_last(const Tensor &x_in, const Tensor &idx_in) {
  NR_CHECK(x_in.dim() == 2 && idx_in.dim() == 2 && idx_in.shape()[0] == x_in.shape()[0],
           "gather: expected x [R, C] and index [R, K], got {} and {}", shape_str(x_in.shape()), shape_str(idx_in.shape()));
  check_same(x_in, idx_in, "gather", false);
  int64_t R = x_in.shape()[0], C = x_in.shape()[1], K = idx_in.shape()[1];
  Tensor x = contig(x_in), idx = checked_indices(idx_in, C, "gather");
  Tensor out = Tensor::empty({R, K}, {x.dtype(), x.device()});
  if (R * K == 0) return out;
  if (x.is_cuda()) {
    check_cuda_f32(x, "gather");
    NR_CUDA(kernels::cuda::gather_rows(x.data_ptr<float>(), idx.data_ptr<int64_t>(), out.data_ptr<float>(), R, C, K));
  } else {
    visit_float(x.dtype(), "gather", [&](auto tag) {
      using T = decltype(tag);
      cpu::gather_rows<T>((const T *)x.raw_data(), idx.data_ptr<int64_t>(), (T *)out.raw_data(), R, C, K);
    });
  }
  return out;
}

Tensor scatter_add_last(const Tensor &dout_in, const Tensor &idx_in, int64_t C) {
  int64_t R = dout_in.shape()[0], K = dout_in.shape()[1];
  Tensor dout = contig(dout_in), idx = contig(cast(idx_in, kInt64));
  Tensor dx = Tensor::empty({R, C}, {dout.dtype(), dout.device()});
  fill_(dx, 0);
  if (R * K == 0) return dx;
  if (dout.is_cuda()) {
    NR_CUDA(kernels::cuda::scatter_add_rows(dout.data_ptr<float>(), idx.data_ptr<int64_t>(), dx.data_ptr<float>(), R, C, K));
  } else {
    visit_float(dout.dtype(), "scatter_add", [&](auto tag) {
      using T = decltype(tag);
      cpu::scatter_add_rows<T>((const T *)dout.raw_data(), idx.data_ptr<int64_t>(), (T *)dx.raw_data(), R, C, K);
    });
  }
  return dx;
}

// cat along `dim`: move dim to the front so each input is one contiguous block, concatenate the
// blocks with byte copies, then move the dim back (a view of the result).
Tensor cat(const std::vector<Tensor> &xs, int64_t dim) {
  NR_CHECK(!xs.empty(), "cat: needs at least one tensor");
  const Tensor &x0 = xs[0];
  int64_t d = wrap_dim(dim, x0.dim(), "cat");
  int64_t total = 0;
  for (const auto &x : xs) {
    check_same(x0, x, "cat");
    NR_CHECK(x.dim() == x0.dim(), "cat: tensors have different ranks: {} and {}", shape_str(x0.shape()), shape_str(x.shape()));
    for (int64_t i = 0; i < x.dim(); ++i)
      NR_CHECK(i == d || x.shape()[i] == x0.shape()[i], "cat: shapes {} and {} differ outside dim {}",
               shape_str(x0.shape()), shape_str(x.shape()), d);
    total += x.shape()[d];
  }
  auto front = [&](const Tensor &t) {  // dim d moved to the front, as a raw view
    Shape s = t.shape(), st = t.strides();
    s.erase(s.begin() + d); st.erase(st.begin() + d);
    s.insert(s.begin(), t.shape()[d]); st.insert(st.begin(), t.strides()[d]);
    return raw_view(t, s, st);
  };
  Shape fshape = front(x0).shape();
  fshape[0] = total;
  Tensor outf = Tensor::empty(fshape, {x0.dtype(), x0.device()});
  size_t isz = itemsize(x0.dtype()), pos = 0;
  for (const auto &x : xs) {
    Tensor f = contig(front(x));
    size_t nb = f.numel() * isz;
    copy_bytes((char *)outf.raw_data() + pos, outf.device(), f.raw_data(), f.device(), nb);
    pos += nb;
  }
  // Move dim 0 back to position d.
  Shape s = outf.shape(), st = outf.strides();
  int64_t n0 = s[0], s0 = st[0];
  s.erase(s.begin()); st.erase(st.begin());
  s.insert(s.begin() + d, n0); st.insert(st.begin() + d, s0);
  Tensor out = raw_view(outf, s, st);
  return d == 0 ? out : contiguous(out);
}

}  // namespace nanorlhf::native
