// safetensors serialization and validating parser (format: github.com/huggingface/safetensors,
// "Format" section). Offsets in the header are relative to the start of the data section.
#include "nn/safetensors.h"

#include <algorithm>
#include <bit>
#include <cstring>
#include <stdexcept>

#include <nlohmann/json.hpp>

#include "nn/atomic_file.h"

namespace nanorlhf::nn {

static_assert(std::endian::native == std::endian::little, "safetensors I/O assumes a little-endian host");

namespace {

// Same limit as the reference implementation: a header this large is corruption, not a model.
constexpr uint64_t kMaxHeader = 100'000'000;

struct DtypeInfo {
  const char* name;
  int64_t size;
};
constexpr DtypeInfo kDtypes[] = {{"F64", 8}, {"F32", 4}, {"F16", 2}, {"BF16", 2}, {"I64", 8}, {"I32", 4},
                                 {"I16", 2}, {"I8", 1},  {"U8", 1},  {"BOOL", 1}};

std::string shape_str(const std::vector<int64_t>& shape) {
  std::string s = "[";
  for (size_t i = 0; i < shape.size(); ++i) s += (i ? ", " : "") + std::to_string(shape[i]);
  return s + "]";
}

// numel with overflow and sign checks; -1 when the shape is invalid.
int64_t checked_numel(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t d : shape) {
    if (d < 0) return -1;
    if (d != 0 && n > (int64_t{1} << 50) / d) return -1;
    n *= d;
  }
  return n;
}

template <typename T>
RawTensor make_raw(const char* dtype, std::vector<int64_t> shape, std::span<const T> values) {
  RawTensor t{dtype, std::move(shape), {}};
  if (t.numel() != static_cast<int64_t>(values.size()))
    throw std::invalid_argument("RawTensor: shape " + shape_str(t.shape) + " holds " + std::to_string(t.numel()) +
                                " elements but " + std::to_string(values.size()) + " values were given");
  t.data.resize(values.size() * sizeof(T));
  if (!values.empty()) std::memcpy(t.data.data(), values.data(), t.data.size());
  return t;
}

template <typename T>
std::vector<T> read_as(const RawTensor& t, const char* dtype) {
  if (t.dtype != dtype)
    throw std::invalid_argument(std::string("RawTensor: expected dtype ") + dtype + ", got " + t.dtype);
  if (static_cast<int64_t>(t.data.size()) != t.numel() * static_cast<int64_t>(sizeof(T)))
    throw std::invalid_argument("RawTensor: shape " + shape_str(t.shape) + " of " + t.dtype + " needs " +
                                std::to_string(t.numel() * sizeof(T)) + " bytes, data holds " +
                                std::to_string(t.data.size()));
  std::vector<T> out(t.numel());
  if (!out.empty()) std::memcpy(out.data(), t.data.data(), t.data.size());
  return out;
}

}  // namespace

int64_t dtype_itemsize(std::string_view dtype) {
  for (const auto& d : kDtypes)
    if (dtype == d.name) return d.size;
  std::string valid;
  for (const auto& d : kDtypes) valid += (valid.empty() ? "" : ", ") + std::string(d.name);
  throw std::invalid_argument("unknown dtype '" + std::string(dtype) + "'; expected one of " + valid);
}

int64_t RawTensor::numel() const {
  int64_t n = checked_numel(shape);
  if (n < 0) throw std::invalid_argument("RawTensor: invalid shape " + shape_str(shape));
  return n;
}

RawTensor RawTensor::from_f32(std::vector<int64_t> shape, std::span<const float> values) {
  return make_raw("F32", std::move(shape), values);
}
RawTensor RawTensor::from_i64(std::vector<int64_t> shape, std::span<const int64_t> values) {
  return make_raw("I64", std::move(shape), values);
}
std::vector<float> RawTensor::to_f32() const { return read_as<float>(*this, "F32"); }
std::vector<int64_t> RawTensor::to_i64() const { return read_as<int64_t>(*this, "I64"); }

std::string serialize_safetensors(const std::map<std::string, RawTensor>& tensors,
                                  const std::map<std::string, std::string>& metadata) {
  nlohmann::json header = nlohmann::json::object();
  uint64_t offset = 0;
  for (const auto& [name, t] : tensors) {
    if (name == "__metadata__") throw std::invalid_argument("safetensors: '__metadata__' is reserved, not a tensor name");
    const int64_t item = dtype_itemsize(t.dtype);
    const int64_t n = checked_numel(t.shape);
    if (n < 0) throw std::invalid_argument("safetensors: tensor '" + name + "' has invalid shape " + shape_str(t.shape));
    if (static_cast<int64_t>(t.data.size()) != n * item)
      throw std::invalid_argument("safetensors: tensor '" + name + "' with shape " + shape_str(t.shape) + " of " +
                                  t.dtype + " needs " + std::to_string(n * item) + " bytes, its data holds " +
                                  std::to_string(t.data.size()));
    header[name] = {{"dtype", t.dtype}, {"shape", t.shape}, {"data_offsets", {offset, offset + t.data.size()}}};
    offset += t.data.size();
  }
  if (!metadata.empty()) header["__metadata__"] = metadata;

  std::string h;
  try {
    h = header.dump();
  } catch (const nlohmann::json::type_error& e) {
    throw std::invalid_argument(std::string("safetensors: tensor names and metadata must be UTF-8: ") + e.what());
  }
  h.append((8 - h.size() % 8) % 8, ' ');  // keeps the data section 8-byte aligned

  std::string out;
  out.reserve(8 + h.size() + offset);
  const uint64_t len = h.size();
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((len >> (8 * i)) & 0xff));
  out += h;
  for (const auto& [name, t] : tensors) out.append(reinterpret_cast<const char*>(t.data.data()), t.data.size());
  return out;
}

SafetensorsFile parse_safetensors(std::string_view bytes, const std::string& name) {
  auto bad = [&](const std::string& what) { return std::runtime_error("safetensors file '" + name + "': " + what); };
  if (bytes.size() < 8)
    throw bad("too short (" + std::to_string(bytes.size()) + " bytes); a safetensors file starts with an 8-byte header length");
  uint64_t n = 0;
  for (int i = 0; i < 8; ++i) n |= static_cast<uint64_t>(static_cast<unsigned char>(bytes[i])) << (8 * i);
  if (n > kMaxHeader)
    throw bad("oversized header: the header length field says " + std::to_string(n) + " bytes, the limit is " +
              std::to_string(kMaxHeader));
  if (n > bytes.size() - 8)
    throw bad("truncated header: the header length field says " + std::to_string(n) + " bytes but only " +
              std::to_string(bytes.size() - 8) + " bytes follow it");
  const std::string_view header_text = bytes.substr(8, n);
  const std::string_view data = bytes.substr(8 + n);

  nlohmann::json header;
  try {
    header = nlohmann::json::parse(header_text);
  // json::exception, not just parse_error: a number too large for a double (1e999) is out_of_range.
  } catch (const nlohmann::json::exception& e) {
    throw bad(std::string("invalid JSON header: ") + e.what());
  }
  if (!header.is_object()) throw bad(std::string("the header must be a JSON object, got ") + header.type_name());

  SafetensorsFile file;
  struct Span {
    uint64_t begin, end;
    std::string name;
  };
  std::vector<Span> spans;
  for (const auto& kv : header.items()) {
    // Named references, not a structured binding: clang before 16 cannot capture one in bad_tensor below.
    const std::string& key = kv.key();
    const nlohmann::json& entry = kv.value();
    if (key == "__metadata__") {
      if (!entry.is_object()) throw bad("\"__metadata__\" must be an object of strings, got " + entry.dump());
      for (const auto& [mk, mv] : entry.items()) {
        if (!mv.is_string()) throw bad("metadata value of '" + mk + "' must be a string, got " + mv.dump());
        file.metadata[mk] = mv.get<std::string>();
      }
      continue;
    }
    auto bad_tensor = [&](const std::string& what) { return bad("tensor '" + key + "': " + what); };
    if (!entry.is_object()) throw bad_tensor("expected an object with dtype, shape and data_offsets, got " + entry.dump());
    for (const char* field : {"dtype", "shape", "data_offsets"})
      if (!entry.contains(field)) throw bad_tensor(std::string("missing \"") + field + "\"");
    if (!entry["dtype"].is_string()) throw bad_tensor("dtype must be a string, got " + entry["dtype"].dump());
    RawTensor t;
    t.dtype = entry["dtype"].get<std::string>();
    int64_t item;
    try {
      item = dtype_itemsize(t.dtype);
    } catch (const std::invalid_argument& e) {
      throw bad_tensor(e.what());
    }
    const auto& js = entry["shape"];
    if (!js.is_array()) throw bad_tensor("shape must be an array of non-negative integers, got " + js.dump());
    for (const auto& d : js) {
      if (!d.is_number_unsigned()) throw bad_tensor("shape must be an array of non-negative integers, got " + js.dump());
      if (d.get<uint64_t>() > (uint64_t{1} << 50)) throw bad_tensor("shape dimension too large in " + js.dump());
      t.shape.push_back(d.get<int64_t>());
    }
    const int64_t numel = checked_numel(t.shape);
    if (numel < 0) throw bad_tensor("shape " + js.dump() + " has too many elements");
    const auto& jo = entry["data_offsets"];
    if (!jo.is_array() || jo.size() != 2 || !jo[0].is_number_unsigned() || !jo[1].is_number_unsigned())
      throw bad_tensor("data_offsets must be [begin, end] with non-negative integers, got " + jo.dump());
    const uint64_t b = jo[0].get<uint64_t>(), e = jo[1].get<uint64_t>();
    if (b > e) throw bad_tensor("data_offsets [" + std::to_string(b) + ", " + std::to_string(e) + "] are out of order");
    if (e - b != static_cast<uint64_t>(numel * item))
      throw bad_tensor("shape " + shape_str(t.shape) + " of " + t.dtype + " needs " + std::to_string(numel * item) +
                       " bytes but data_offsets [" + std::to_string(b) + ", " + std::to_string(e) + ") span " +
                       std::to_string(e - b));
    spans.push_back({b, e, key});
    file.tensors.emplace(key, std::move(t));
  }

  // The data section must be covered exactly: no overlap, no hole, nothing beyond its end.
  std::sort(spans.begin(), spans.end(), [](const Span& x, const Span& y) {
    return x.begin != y.begin ? x.begin < y.begin : x.end < y.end;
  });
  uint64_t pos = 0;
  for (const auto& s : spans) {
    if (s.end > data.size())
      throw bad("truncated: tensor '" + s.name + "' needs bytes [" + std::to_string(s.begin) + ", " +
                std::to_string(s.end) + ") of the data section but the file holds only " + std::to_string(data.size()));
    if (s.begin < pos)
      throw bad("tensor '" + s.name + "' bytes [" + std::to_string(s.begin) + ", " + std::to_string(s.end) +
                ") overlap the previous tensor, which ends at " + std::to_string(pos));
    if (s.begin > pos)
      throw bad("tensor '" + s.name + "' starts at byte " + std::to_string(s.begin) + " of the data section, leaving a hole after byte " +
                std::to_string(pos));
    pos = s.end;
  }
  if (pos != data.size())
    throw bad("the data section holds " + std::to_string(data.size()) + " bytes but the tensors cover only " +
              std::to_string(pos));

  for (const auto& s : spans) {
    auto& t = file.tensors[s.name];
    t.data.assign(reinterpret_cast<const uint8_t*>(data.data()) + s.begin,
                  reinterpret_cast<const uint8_t*>(data.data()) + s.end);
  }
  return file;
}

void save_safetensors(const std::string& path, const std::map<std::string, RawTensor>& tensors,
                      const std::map<std::string, std::string>& metadata) {
  std::string bytes;
  try {
    bytes = serialize_safetensors(tensors, metadata);
  } catch (const std::invalid_argument& e) {
    throw std::invalid_argument("cannot save '" + path + "': " + e.what());
  }
  write_file_atomic(path, bytes);
}

SafetensorsFile load_safetensors(const std::string& path) { return parse_safetensors(read_file(path), path); }

}  // namespace nanorlhf::nn
