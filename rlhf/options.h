// One table per options struct: every config key bound to the member it fills. The struct's
// initialisers are the only place a default is written (schema() reads them off a default-made
// struct); the table is the only place a key's name, help, range and choices are written.
//
//   struct DPOOptions { double beta = 0.1; std::string loss_type = "sigmoid"; ... };
//   OptionTable<DPOOptions> t;
//   t.add("beta", &DPOOptions::beta, "KL strength", Range::above(0))
//    .add("loss_type", &DPOOptions::loss_type, "the loss", {}, {"sigmoid", "ipo"});
//   Config c(t.schema());  ...  DPOOptions o = t.read(c);   // read() calls o.validate() if it has one
#pragma once
#include <algorithm>
#include <cstdint>
#include <functional>
#include <optional>
#include <stdexcept>
#include <string>
#include <type_traits>
#include <vector>

#include "rlhf/config.h"
#include "tensor/error.h"

namespace nanorlhf::rlhf {

// Bounds of a numeric key.
struct Range {
  std::optional<double> min = std::nullopt, max = std::nullopt;
  bool min_exclusive = false;
  static Range at_least(double v) { return {v, std::nullopt, false}; }
  static Range above(double v) { return {v, std::nullopt, true}; }
  static Range between(double lo, double hi) { return {lo, hi, false}; }
};

template <class T>
class OptionTable {
 public:
  // A key bound to the member `ref(t)` names: a member pointer (&T::beta) or an accessor
  // ([](T &t) -> auto & { return t.optim.lr; }).
  template <class Ref>
  OptionTable &add(std::string name, Ref ref, std::string help, Range range = {},
                   std::vector<std::string> choices = {}) {
    auto member = [ref](auto &t) -> auto & {
      if constexpr (std::is_member_object_pointer_v<Ref>) return t.*ref;
      else return ref(t);
    };
    using V = std::remove_cvref_t<decltype(member(std::declval<T &>()))>;
    Entry e;
    e.key = ConfigKey{std::move(name), nullptr, std::move(help), range.min, range.max, range.min_exclusive,
                      std::move(choices)};
    e.get = [member](const T &t) { return to_json(member(const_cast<T &>(t))); };
    e.set = [member](T &t, const Config &c, const std::string &key) { member(t) = from_config<V>(c, key); };
    entries_.push_back(std::move(e));
    return *this;
  }

  // Every key of `sub`, filling the member `outer` of T (its defaults are T{}'s, not S{}'s).
  template <class S>
  OptionTable &include(S T::*outer, const OptionTable<S> &sub, const std::string &prefix = "") {
    for (const auto &s : sub.entries()) {
      Entry e;
      e.key = s.key;
      e.key.name = prefix + s.key.name;
      e.get = [outer, g = s.get](const T &t) { return g(t.*outer); };
      e.set = [outer, f = s.set](T &t, const Config &c, const std::string &key) { f(t.*outer, c, key); };
      entries_.push_back(std::move(e));
    }
    return *this;
  }

  // Per-trainer wording or bounds of a shared key, or a shared key a trainer has no use for.
  OptionTable &help(const std::string &name, std::string text) { return find(name).key.help = std::move(text), *this; }
  OptionTable &range(const std::string &name, Range r) {
    ConfigKey &k = find(name).key;
    k.min = r.min, k.max = r.max, k.min_exclusive = r.min_exclusive;
    return *this;
  }
  OptionTable &remove(const std::string &name) {
    find(name);
    std::erase_if(entries_, [&](const Entry &e) { return e.key.name == name; });
    return *this;
  }

  // The config schema: every key with the default of a default-made T.
  std::vector<ConfigKey> schema() const {
    const T d{};
    std::vector<ConfigKey> out;
    for (const auto &e : entries_) {
      out.push_back(e.key);
      out.back().default_value = e.get(d);
    }
    return out;
  }

  // The options a checked config holds; then T::validate() (the checks that span several keys).
  T read(const Config &c) const {
    T t{};
    for (const auto &e : entries_) e.set(t, c, e.key.name);
    if constexpr (requires { t.validate(); }) t.validate();
    return t;
  }

  // The same checks on options built in code (a trainer's constructor): every key's range and
  // choices, then T::validate(). Errors read "<who>: <key> must be > 0, got 0".
  void check(const T &t, const std::string &who) const {
    for (const auto &e : entries_) {
      const ConfigKey &k = e.key;
      const nlohmann::json v = e.get(t);
      auto fail = [&](const std::string &what) { throw Error(who + ": " + k.name + " " + what); };
      if (v.is_number() && (k.min || k.max)) {
        const double x = v.get<double>();
        if (k.min && (k.min_exclusive ? !(x > *k.min) : !(x >= *k.min)))
          fail("must be " + std::string(k.min_exclusive ? "> " : ">= ") + number(*k.min) + ", got " + v.dump());
        if (k.max && !(x <= *k.max)) fail("must be <= " + number(*k.max) + ", got " + v.dump());
      }
      if (v.is_string() && !k.choices.empty() &&
          std::find(k.choices.begin(), k.choices.end(), v.get<std::string>()) == k.choices.end()) {
        std::string valid;
        for (const auto &c : k.choices) valid += (valid.empty() ? "" : ", ") + c;
        throw Error(who + ": unknown " + k.name + " '" + v.get<std::string>() + "'; valid: " + valid);
      }
    }
    if constexpr (requires { t.validate(); }) t.validate();
  }

  // t as a nested config ({"model": {"ctx": 96}, ...}): what a run directory's config.json holds.
  nlohmann::json resolved(const T &t) const {
    nlohmann::json out = nlohmann::json::object();
    for (const auto &e : entries_) {
      nlohmann::json *node = &out;
      std::string name = e.key.name;
      for (size_t dot; (dot = name.find('.')) != std::string::npos; name.erase(0, dot + 1))
        node = &(*node)[name.substr(0, dot)];
      (*node)[name] = e.get(t);
    }
    return out;
  }

  struct Entry {
    ConfigKey key;
    std::function<nlohmann::json(const T &)> get;
    std::function<void(T &, const Config &, const std::string &)> set;
  };
  const std::vector<Entry> &entries() const { return entries_; }

 private:
  Entry &find(const std::string &name) {
    for (auto &e : entries_)
      if (e.key.name == name) return e;
    throw std::invalid_argument("option table: no key '" + name + "'");
  }

  static std::string number(double v) {
    std::string s = nlohmann::json(v).dump();
    if (s.size() > 2 && s.ends_with(".0")) s.resize(s.size() - 2);
    return s;
  }
  template <class V>
  static nlohmann::json to_json(const V &v) {
    if constexpr (std::is_same_v<V, bool> || std::is_same_v<V, std::string>) return v;
    else if constexpr (std::is_integral_v<V>) return static_cast<int64_t>(v);
    else if constexpr (std::is_floating_point_v<V>) return static_cast<double>(v);
    else static_assert(sizeof(V) == 0, "an option is a bool, an integer, a number or a string");
  }
  template <class V>
  static V from_config(const Config &c, const std::string &key) {
    if constexpr (std::is_same_v<V, bool>) return c.flag(key);
    else if constexpr (std::is_same_v<V, std::string>) return c.str(key);
    else if constexpr (std::is_integral_v<V>) return static_cast<V>(c.integer(key));
    else return static_cast<V>(c.num(key));
  }

  std::vector<Entry> entries_;
};

}  // namespace nanorlhf::rlhf
