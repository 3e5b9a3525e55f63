// Parser for the compact scheduler spec strings of spec.h and the factory that builds the scheduler.
#include "engine/sched/spec.h"

#include <cctype>
#include <charconv>
#include <cmath>
#include <initializer_list>
#include <map>
#include <set>
#include <string>

#include "engine/error.h"
#include "engine/sched/schedulers.h"

namespace rtune::sched {
namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// Splits on commas outside [...].
std::vector<std::string_view> split_top(std::string_view s, std::string_view spec) {
  std::vector<std::string_view> out;
  int depth = 0;
  size_t start = 0;
  for (size_t i = 0; i <= s.size(); ++i) {
    if (i < s.size() && s[i] == '[') ++depth;
    if (i < s.size() && s[i] == ']' && --depth < 0) fail("scheduler spec '{}': unbalanced ']'", spec);
    if (i == s.size() || (s[i] == ',' && depth == 0)) {
      out.push_back(trim(s.substr(start, i - start)));
      start = i + 1;
    }
  }
  if (depth != 0) fail("scheduler spec '{}': unbalanced '['", spec);
  return out;
}

// The key=value arguments of one spec, consumed by the builder of its kind.
class Args {
 public:
  Args(std::string_view spec, std::string_view kind, std::string_view body) : spec_(spec), kind_(kind) {
    if (trim(body).empty()) return;
    for (auto item : split_top(body, spec)) {
      const auto eq = item.find('=');
      if (item.empty() || eq == std::string_view::npos)
        fail("scheduler spec '{}': expected key=value, got '{}'", spec_, item);
      std::string key(trim(item.substr(0, eq)));
      for (char& c : key) c = char(std::tolower(static_cast<unsigned char>(c)));
      const auto value = trim(item.substr(eq + 1));
      if (key.empty() || value.empty()) fail("scheduler spec '{}': empty key or value in '{}'", spec_, item);
      if (!kv_.emplace(key, std::string(value)).second) fail("scheduler spec '{}': '{}' given twice", spec_, key);
    }
  }

  // Rejects keys this kind does not take, listing the ones it does.
  void allow(std::initializer_list<std::string_view> keys) const {
    std::set<std::string_view> ok(keys);
    for (const auto& [k, v] : kv_) {
      if (ok.count(k)) continue;
      std::string list;
      for (auto a : keys) list += (list.empty() ? "" : ", ") + std::string(a);
      fail("scheduler spec '{}': unknown key '{}' for '{}' (known: {})", spec_, k, kind_, list);
    }
  }

  bool has(const std::string& key) const { return kv_.count(key) != 0; }

  double num(const std::string& key, double dflt) const { return has(key) ? parse_num(key, kv_.at(key)) : dflt; }
  double num(const std::string& key) const { return parse_num(key, required(key)); }
  int64_t integer(const std::string& key, int64_t dflt) const {
    return has(key) ? parse_int(key, kv_.at(key)) : dflt;
  }
  int64_t integer(const std::string& key) const { return parse_int(key, required(key)); }

  bool flag(const std::string& key, bool dflt) const {
    if (!has(key)) return dflt;
    const auto& v = kv_.at(key);
    if (v == "true" || v == "1") return true;
    if (v == "false" || v == "0") return false;
    fail("scheduler spec '{}': '{}' must be true/false/1/0, got '{}'", spec_, key, v);
  }

  // One of `allowed`; returns its index.
  size_t choice(const std::string& key, std::initializer_list<std::string_view> allowed, size_t dflt) const {
    if (!has(key)) return dflt;
    size_t i = 0;
    for (auto a : allowed) {
      if (kv_.at(key) == a) return i;
      ++i;
    }
    std::string list;
    for (auto a : allowed) list += (list.empty() ? "" : "|") + std::string(a);
    fail("scheduler spec '{}': '{}' must be one of {}, got '{}'", spec_, key, list, kv_.at(key));
  }

  // A number or a [list] of numbers.
  std::vector<double> nums(const std::string& key) const {
    std::vector<double> out;
    for (auto item : items(key)) out.push_back(parse_num(key, std::string(item)));
    return out;
  }
  std::vector<int64_t> ints(const std::string& key) const {
    std::vector<int64_t> out;
    for (auto item : items(key)) out.push_back(parse_int(key, std::string(item)));
    return out;
  }

  const std::string& spec() const { return spec_; }

 private:
  const std::string& required(const std::string& key) const {
    if (!has(key)) fail("scheduler spec '{}': '{}' needs '{}'", spec_, kind_, key);
    return kv_.at(key);
  }
  std::vector<std::string_view> items(const std::string& key) const {
    std::string_view v = required(key);
    if (v.front() != '[') return {v};
    if (v.back() != ']') fail("scheduler spec '{}': list '{}' must end with ']'", spec_, key);
    v = trim(v.substr(1, v.size() - 2));
    if (v.empty()) fail("scheduler spec '{}': list '{}' is empty", spec_, key);
    auto out = split_top(v, spec_);
    for (auto s : out)
      if (s.empty() || s.front() == '[') fail("scheduler spec '{}': bad element in list '{}'", spec_, key);
    return out;
  }
  double parse_num(const std::string& key, const std::string& v) const {
    double x = 0;
    const char* end = v.data() + v.size();
    auto [p, ec] = std::from_chars(v.data(), end, x);
    if (ec != std::errc() || p != end || !std::isfinite(x))
      fail("scheduler spec '{}': '{}' must be a finite number, got '{}'", spec_, key, v);
    return x;
  }
  int64_t parse_int(const std::string& key, const std::string& v) const {
    int64_t x = 0;
    const char* end = v.data() + v.size();
    auto [p, ec] = std::from_chars(v.data(), end, x);
    if (ec != std::errc() || p != end) fail("scheduler spec '{}': '{}' must be an integer, got '{}'", spec_, key, v);
    return x;
  }

  std::string spec_, kind_;
  std::map<std::string, std::string> kv_;
};

std::unique_ptr<Scheduler> make_onecycle(const Args& a, std::vector<double> lrs, const SchedContext& ctx) {
  a.allow({"max_lr", "total_steps", "epochs", "steps_per_epoch", "pct_start", "anneal", "anneal_strategy",
           "cycle_momentum", "base_momentum", "max_momentum", "div_factor", "final_div_factor", "three_phase"});
  OneCycleLROptions o;
  if (a.has("max_lr")) o.max_lr = a.nums("max_lr");
  if (a.has("total_steps")) {
    if (a.has("epochs") || a.has("steps_per_epoch"))
      fail("scheduler spec '{}': give total_steps or epochs and steps_per_epoch, not both", a.spec());
    o.total_steps = a.integer("total_steps");
  } else {
    const int64_t e = a.integer("epochs", ctx.epochs), s = a.integer("steps_per_epoch", ctx.steps_per_epoch);
    if (e <= 0 || s <= 0)
      fail("scheduler spec '{}': onecycle needs total_steps, or epochs and steps_per_epoch (> 0)", a.spec());
    o.total_steps = e * s;
  }
  o.pct_start = a.num("pct_start", o.pct_start);
  if (a.has("anneal") && a.has("anneal_strategy"))
    fail("scheduler spec '{}': give anneal or anneal_strategy, not both", a.spec());
  o.linear = a.choice(a.has("anneal") ? "anneal" : "anneal_strategy", {"cos", "linear"}, 0) == 1;
  o.cycle_momentum = a.flag("cycle_momentum", o.cycle_momentum);
  o.base_momentum = a.num("base_momentum", o.base_momentum);
  o.max_momentum = a.num("max_momentum", o.max_momentum);
  o.div_factor = a.num("div_factor", o.div_factor);
  o.final_div_factor = a.num("final_div_factor", o.final_div_factor);
  o.three_phase = a.flag("three_phase", o.three_phase);
  return std::make_unique<OneCycleLR>(std::move(lrs), std::move(o));
}

std::unique_ptr<Scheduler> make_plateau(const Args& a, std::vector<double> lrs) {
  a.allow({"mode", "factor", "patience", "threshold", "threshold_mode", "cooldown", "min_lr", "eps"});
  ReduceLROnPlateauOptions o;
  o.mode_max = a.choice("mode", {"min", "max"}, 0) == 1;
  o.factor = a.num("factor", o.factor);
  o.patience = a.integer("patience", o.patience);
  o.threshold = a.num("threshold", o.threshold);
  o.threshold_abs = a.choice("threshold_mode", {"rel", "abs"}, 0) == 1;
  o.cooldown = a.integer("cooldown", o.cooldown);
  if (a.has("min_lr")) o.min_lr = a.nums("min_lr");
  o.eps = a.num("eps", o.eps);
  return std::make_unique<ReduceLROnPlateau>(std::move(lrs), std::move(o));
}

std::unique_ptr<Scheduler> build(const Args& a, std::string_view kind, std::vector<double> lrs,
                                 const SchedContext& ctx) {
  if (kind == "step") {
    a.allow({"step_size", "gamma"});
    return std::make_unique<StepLR>(std::move(lrs), StepLROptions{a.integer("step_size"), a.num("gamma", 0.1)});
  }
  if (kind == "multistep") {
    a.allow({"milestones", "gamma"});
    return std::make_unique<MultiStepLR>(std::move(lrs), MultiStepLROptions{a.ints("milestones"), a.num("gamma", 0.1)});
  }
  if (kind == "cosine") {
    a.allow({"t_max", "eta_min"});
    const int64_t t_max = a.has("t_max") || ctx.epochs <= 0 ? a.integer("t_max") : ctx.epochs;
    return std::make_unique<CosineAnnealingLR>(std::move(lrs), CosineAnnealingLROptions{t_max, a.num("eta_min", 0.0)});
  }
  if (kind == "linear") {
    a.allow({"start_factor", "end_factor", "total_iters"});
    LinearLROptions o;
    o = {a.num("start_factor", o.start_factor), a.num("end_factor", o.end_factor), a.integer("total_iters", o.total_iters)};
    return std::make_unique<LinearLR>(std::move(lrs), o);
  }
  if (kind == "exponential") {
    a.allow({"gamma"});
    return std::make_unique<ExponentialLR>(std::move(lrs), ExponentialLROptions{a.num("gamma")});
  }
  if (kind == "onecycle") return make_onecycle(a, std::move(lrs), ctx);
  if (kind == "plateau") return make_plateau(a, std::move(lrs));
  fail("scheduler spec '{}': unknown scheduler '{}' (known: step, multistep, cosine, linear, exponential, "
       "onecycle, plateau)", a.spec(), kind);
}

}  // namespace

std::unique_ptr<Scheduler> make_scheduler(std::string_view spec, std::span<const double> base_lrs,
                                          const SchedContext& ctx) {
  const auto colon = spec.find(':');
  const auto kind = trim(spec.substr(0, colon));
  const auto body = colon == std::string_view::npos ? std::string_view{} : spec.substr(colon + 1);
  if (kind.empty()) fail("scheduler spec '{}': missing the scheduler name before ':'", spec);
  Args args(spec, kind, body);
  try {
    return build(args, kind, std::vector<double>(base_lrs.begin(), base_lrs.end()), ctx);
  } catch (const Error& e) {
    // Option checks in the constructors do not know the spec: name it.
    const std::string msg = e.what();
    if (msg.rfind("scheduler spec", 0) == 0) throw;
    fail("scheduler spec '{}': {}", spec, msg);
  }
}

}  // namespace rtune::sched
