// Views (no copies) and shape ops, with their backward formulas, and the Tensor method shortcuts.
#include <numeric>

#include "autograd/ops.h"
#include "tensor/native.h"

namespace nanorlhf {

using autograd::record;

namespace {

Tensor make_view(const Tensor &x, Shape shape, Shape strides, int64_t offset) {
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = x.storage();
  impl->shape = std::move(shape);
  impl->strides = std::move(strides);
  impl->offset = offset;
  impl->dtype = x.dtype();
  return Tensor(impl);
}

// Strides for viewing x with a new shape without a copy, if possible (PyTorch's rule: each run of
// merged/split dims must be contiguous within itself).
bool view_strides(const Tensor &x, const Shape &shape, Shape *out) {
  const Shape &os = x.shape(), &ost = x.strides();
  if (os.empty() || x.numel() == 0) { *out = contiguous_strides(shape); return true; }
  Shape st(shape.size());
  int64_t view_d = (int64_t)shape.size() - 1;
  int64_t chunk = 1, tensor_numel = 1;
  int64_t base_stride = os.empty() ? 1 : ost.back();
  for (int64_t d = (int64_t)os.size() - 1; d >= 0; --d) {
    tensor_numel *= os[d];
    if (d == 0 || (os[d - 1] != 1 && ost[d - 1] != tensor_numel * base_stride)) {
      while (view_d >= 0 && (chunk < tensor_numel || shape[view_d] == 1)) {
        st[view_d] = chunk * base_stride;
        chunk *= shape[view_d];
        view_d--;
      }
      if (chunk != tensor_numel) return false;
      if (d > 0) { base_stride = ost[d - 1]; tensor_numel = 1; chunk = 1; }
    }
  }
  if (view_d != -1) return false;
  *out = st;
  return true;
}

Shape infer_shape(const Shape &shape, int64_t numel, const Shape &from) {
  Shape s = shape;
  int64_t known = 1, infer = -1;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == -1) {
      NR_CHECK(infer < 0, "view: only one dim can be -1, got {}", shape_str(shape));
      infer = (int64_t)i;
    } else {
      NR_CHECK(s[i] >= 0, "view: invalid size in shape {}", shape_str(shape));
      known *= s[i];
    }
  }
  if (infer >= 0) {
    NR_CHECK(known > 0 && numel % known == 0, "view: shape {} is invalid for input of shape {}", shape_str(shape),
             shape_str(from));
    s[infer] = numel / known;
  }
  NR_CHECK(shape_numel(s) == numel, "view: shape {} is invalid for input of shape {} ({} elements)", shape_str(shape),
           shape_str(from), numel);
  return s;
}

}  // namespace

Tensor Tensor::view(const Shape &shape_in) const {
  Shape shape = infer_shape(shape_in, numel(), this->shape());
  Shape st;
  NR_CHECK(view_strides(*this, shape, &st),
           "view: cannot view a tensor of shape {} and strides {} as {} without a copy; use reshape()",
           shape_str(this->shape()), shape_str(strides()), shape_str(shape));
  return record("view", {*this}, make_view(*this, shape, st, offset()), [s = this->shape()](const Tensor &g) -> std::vector<Tensor> {
    return {g.reshape(s)};
  });
}

Tensor Tensor::reshape(const Shape &shape_in) const {
  Shape shape = infer_shape(shape_in, numel(), this->shape());
  Shape st;
  if (view_strides(*this, shape, &st)) return view(shape);
  return contiguous().view(shape);
}

Tensor Tensor::flatten(int64_t start, int64_t end) const {
  if (dim() == 0) return reshape({1});
  int64_t s = wrap_dim(start, dim(), "flatten"), e = wrap_dim(end, dim(), "flatten");
  Shape shape(this->shape().begin(), this->shape().begin() + s);
  int64_t n = 1;
  for (int64_t i = s; i <= e; ++i) n *= this->shape()[i];
  shape.push_back(n);
  shape.insert(shape.end(), this->shape().begin() + e + 1, this->shape().end());
  return reshape(shape);
}

Tensor Tensor::permute(const Shape &dims) const {
  NR_CHECK((int64_t)dims.size() == dim(), "permute: {} dims given for a tensor of shape {}", dims.size(),
           shape_str(shape()));
  Shape s(dim()), st(dim()), inv(dim(), -1);
  for (int64_t i = 0; i < dim(); ++i) {
    int64_t d = wrap_dim(dims[i], dim(), "permute");
    NR_CHECK(inv[d] < 0, "permute: dim {} repeated in {}", d, shape_str(dims));
    inv[d] = i;
    s[i] = shape()[d];
    st[i] = strides()[d];
  }
  return record("permute", {*this}, make_view(*this, s, st, offset()), [inv](const Tensor &g) -> std::vector<Tensor> {
    return {g.permute(inv)};
  });
}

Tensor Tensor::transpose(int64_t d0, int64_t d1) const {
  if (dim() < 2 && d0 == 0 && d1 == 0) return *this;
  Shape p(dim());
  std::iota(p.begin(), p.end(), 0);
  std::swap(p[wrap_dim(d0, dim(), "transpose")], p[wrap_dim(d1, dim(), "transpose")]);
  return permute(p);
}

Tensor Tensor::narrow(int64_t d_in, int64_t start, int64_t length) const {
  int64_t d = wrap_dim(d_in, dim(), "narrow");
  int64_t n = shape()[d];
  if (start < 0) start += n;
  NR_CHECK(start >= 0 && length >= 0 && start + length <= n,
           "narrow: range [{}, {}) is out of bounds for dim {} of size {} (shape {})", start, start + length, d, n,
           shape_str(shape()));
  Shape s = shape();
  s[d] = length;
  Tensor v = make_view(*this, s, strides(), offset() + start * strides()[d]);
  return record("narrow", {*this}, v, [full = shape(), d, start, length](const Tensor &g) -> std::vector<Tensor> {
    // Pad the gradient back to the full size with zeros.
    std::vector<Tensor> parts;
    Shape s1 = full, s2 = full;
    s1[d] = start;
    s2[d] = full[d] - start - length;
    if (start > 0) parts.push_back(zeros(s1, {g.dtype(), g.device()}));
    parts.push_back(g);
    if (s2[d] > 0) parts.push_back(zeros(s2, {g.dtype(), g.device()}));
    return {parts.size() == 1 ? g : native::cat(parts, d)};
  });
}

Tensor Tensor::select(int64_t d_in, int64_t index) const {
  int64_t d = wrap_dim(d_in, dim(), "select");
  int64_t n = shape()[d];
  NR_CHECK(index >= -n && index < n, "select: index {} is out of range for dim {} of size {}", index, d, n);
  if (index < 0) index += n;
  return narrow(d, index, 1).squeeze(d);
}

Tensor Tensor::expand(const Shape &shape_in) const {
  NR_CHECK(shape_in.size() >= (size_t)dim(), "expand: cannot expand shape {} to fewer dims {}", shape_str(shape()),
           shape_str(shape_in));
  size_t lead = shape_in.size() - dim();
  Shape s(shape_in.size()), st(shape_in.size(), 0);
  for (size_t i = 0; i < shape_in.size(); ++i) {
    if (i < lead) { s[i] = shape_in[i]; continue; }
    int64_t have = shape()[i - lead], want = shape_in[i] == -1 ? have : shape_in[i];
    NR_CHECK(have == want || have == 1, "expand: cannot expand shape {} to {}", shape_str(shape()), shape_str(shape_in));
    s[i] = want;
    st[i] = have == want ? strides()[i - lead] : 0;
  }
  if (s == shape()) return *this;
  return record("expand", {*this}, make_view(*this, s, st, offset()), [orig = shape()](const Tensor &g) -> std::vector<Tensor> {
    return {sum_to_shape(g, orig)};
  });
}

Tensor Tensor::unsqueeze(int64_t d_in) const {
  int64_t d = wrap_dim(d_in, dim() + 1, "unsqueeze");
  Shape s = shape();
  s.insert(s.begin() + d, 1);
  return view(s);
}

Tensor Tensor::squeeze(int64_t d_in) const {
  if (dim() == 0) return *this;
  int64_t d = wrap_dim(d_in, dim(), "squeeze");
  if (shape()[d] != 1) return *this;
  Shape s = shape(), st = strides();
  s.erase(s.begin() + d);
  st.erase(st.begin() + d);
  return record("squeeze", {*this}, make_view(*this, s, st, offset()), [orig = shape()](const Tensor &g) -> std::vector<Tensor> {
    return {g.reshape(orig)};
  });
}

Tensor Tensor::squeeze() const {
  Shape s;
  for (auto n : shape()) if (n != 1) s.push_back(n);
  return reshape(s);
}

Tensor Tensor::contiguous() const {
  if (is_contiguous()) return *this;
  return clone();
}

Tensor Tensor::clone() const {
  return record("clone", {*this}, native::contiguous(*this), [](const Tensor &g) -> std::vector<Tensor> { return {g}; });
}

Tensor Tensor::to(Device device) const {
  if (device == this->device()) return *this;
  return record("to_device", {*this}, native::to_device(*this, device), [from = this->device()](const Tensor &g) -> std::vector<Tensor> {
    return {g.to(from)};
  });
}

Tensor Tensor::to(DType dtype) const {
  if (dtype == this->dtype()) return *this;
  Tensor out = native::cast(*this, dtype);
  if (!is_floating(dtype) || !is_floating(this->dtype())) return out;
  return record("to_dtype", {*this}, out, [from = this->dtype()](const Tensor &g) -> std::vector<Tensor> {
    return {g.to(from)};
  });
}

// ---- shape ops ----

Tensor cat(const std::vector<Tensor> &xs, int64_t dim) {
  NR_CHECK(!xs.empty(), "cat: needs at least one tensor");
  int64_t d = wrap_dim(dim, xs[0].dim(), "cat");
  Shape sizes;
  for (const auto &x : xs) sizes.push_back(x.dim() > d ? x.shape()[d] : 0);
  return record("cat", xs, native::cat(xs, d), [sizes, d](const Tensor &g) -> std::vector<Tensor> {
    std::vector<Tensor> out;
    int64_t pos = 0;
    for (auto n : sizes) { out.push_back(g.narrow(d, pos, n)); pos += n; }
    return out;
  });
}

Tensor stack(const std::vector<Tensor> &xs, int64_t dim) {
  NR_CHECK(!xs.empty(), "stack: needs at least one tensor");
  int64_t d = wrap_dim(dim, xs[0].dim() + 1, "stack");
  std::vector<Tensor> u;
  for (const auto &x : xs) {
    NR_CHECK(x.shape() == xs[0].shape(), "stack: shapes {} and {} differ", shape_str(xs[0].shape()), shape_str(x.shape()));
    u.push_back(x.unsqueeze(d));
  }
  return cat(u, d);
}

std::vector<Tensor> split(const Tensor &x, int64_t split_size, int64_t dim) {
  NR_CHECK(split_size > 0, "split: split_size must be positive, got {}", split_size);
  int64_t d = wrap_dim(dim, x.dim(), "split"), n = x.shape()[d];
  std::vector<Tensor> out;
  for (int64_t s = 0; s < n; s += split_size) out.push_back(x.narrow(d, s, std::min(split_size, n - s)));
  return out;
}

std::vector<Tensor> chunk(const Tensor &x, int64_t chunks, int64_t dim) {
  NR_CHECK(chunks > 0, "chunk: chunks must be positive, got {}", chunks);
  int64_t d = wrap_dim(dim, x.dim(), "chunk"), n = x.shape()[d];
  return split(x, std::max<int64_t>(1, (n + chunks - 1) / chunks), d);
}

namespace {
// 1 where (col - row) satisfies the band, on the last two dims; built on the host, then moved.
Tensor band_mask(const Tensor &x, int64_t diagonal, bool upper) {
  NR_CHECK(x.dim() >= 2, "{}: needs at least 2 dims, got shape {}", upper ? "triu" : "tril", shape_str(x.shape()));
  int64_t R = x.shape()[x.dim() - 2], C = x.shape()[x.dim() - 1];
  std::vector<double> m(R * C);
  for (int64_t i = 0; i < R; ++i)
    for (int64_t j = 0; j < C; ++j) m[i * C + j] = upper ? (j - i >= diagonal) : (j - i <= diagonal);
  return from_vector(m, {R, C}, {x.dtype(), x.device()});
}
}  // namespace

// A select, not x * mask: -inf * 0 would be NaN where the result must be 0 (a causal mask of -inf).
Tensor triu(const Tensor &x, int64_t diagonal) {
  return where(band_mask(x, diagonal, true) > 0.5, x, full({}, 0.0, {x.dtype(), x.device()}));
}
Tensor tril(const Tensor &x, int64_t diagonal) {
  return where(band_mask(x, diagonal, false) > 0.5, x, full({}, 0.0, {x.dtype(), x.device()}));
}

// ---- Tensor method shortcuts ----
Tensor Tensor::sum() const { return nanorlhf::sum(*this); }
Tensor Tensor::sum(const Shape &dims, bool keepdim) const { return nanorlhf::sum(*this, dims, keepdim); }
Tensor Tensor::mean() const { return nanorlhf::mean(*this); }
Tensor Tensor::mean(const Shape &dims, bool keepdim) const { return nanorlhf::mean(*this, dims, keepdim); }
Tensor Tensor::exp() const { return nanorlhf::exp(*this); }
Tensor Tensor::log() const { return nanorlhf::log(*this); }
Tensor Tensor::pow(double p) const { return nanorlhf::pow(*this, p); }
Tensor Tensor::sqrt() const { return nanorlhf::sqrt(*this); }
Tensor Tensor::abs() const { return nanorlhf::abs(*this); }
Tensor Tensor::softmax(int64_t dim) const { return nanorlhf::softmax(*this, dim); }
Tensor Tensor::log_softmax(int64_t dim) const { return nanorlhf::log_softmax(*this, dim); }
Tensor Tensor::matmul(const Tensor &o) const { return nanorlhf::matmul(*this, o); }
Tensor Tensor::masked_fill(const Tensor &mask, double value) const { return nanorlhf::masked_fill(*this, mask, value); }

}  // namespace nanorlhf
