// Scheduler base: stepping and exact save/restore (see scheduler.h).
#include "engine/sched/scheduler.h"

#include <cmath>
#include <string>

#include "engine/error.h"

namespace rtune::sched {

using nlohmann::json;

Scheduler::Scheduler(std::vector<double> base_lrs) : base_lrs_(std::move(base_lrs)), lrs_(base_lrs_) {
  if (base_lrs_.empty()) fail("scheduler: needs at least one parameter group (got no base LRs)");
}

void Scheduler::step() {
  ++last_epoch_;
  advance();
}

void Scheduler::step(double) {
  fail("scheduler '{}': step(metric) is only for schedulers that read a metric (plateau); call step()",
       kind());
}

json number_to_json(double x) {
  if (std::isfinite(x)) return x;
  if (std::isnan(x)) return "nan";
  return x > 0 ? "inf" : "-inf";
}

double number_from_json(const json& j, std::string_view what) {
  if (j.is_number()) return j.get<double>();
  if (j.is_string()) {
    const auto s = j.get<std::string>();
    if (s == "inf") return INFINITY;
    if (s == "-inf") return -INFINITY;
    if (s == "nan") return NAN;
  }
  fail("scheduler state: '{}' should be a number, got {}", what, j.dump());
}

namespace {

json numbers_to_json(const std::vector<double>& v) {
  json a = json::array();
  for (double x : v) a.push_back(number_to_json(x));
  return a;
}

std::vector<double> numbers_from_json(const json& j, std::string_view what, size_t n) {
  if (!j.is_array()) fail("scheduler state: '{}' should be an array, got {}", what, j.dump());
  if (j.size() != n) fail("scheduler state: '{}' has {} values, the scheduler has {} groups", what, j.size(), n);
  std::vector<double> v;
  for (const auto& x : j) v.push_back(number_from_json(x, what));
  return v;
}

const json& field(const json& s, const char* key) {
  if (!s.is_object() || !s.contains(key)) fail("scheduler state: missing '{}'", key);
  return s.at(key);
}

}  // namespace

json Scheduler::state() const {
  json s;
  s["kind"] = std::string(kind());
  s["config"] = config();
  s["last_epoch"] = last_epoch_;
  s["base_lrs"] = numbers_to_json(base_lrs_);
  s["lrs"] = numbers_to_json(lrs_);
  s["momentum"] = numbers_to_json(momentum_);
  s["extra"] = extra_state();
  return s;
}

void Scheduler::load_state(const json& s) {
  const auto k = field(s, "kind");
  if (!k.is_string() || k.get<std::string>() != kind())
    fail("scheduler state: saved by scheduler '{}', loading into '{}'", k.dump(), kind());
  if (field(s, "config") != config())
    fail("scheduler state: '{}' was saved with config {} but this one has {}", kind(), s.at("config").dump(),
         config().dump());
  const auto& e = field(s, "last_epoch");
  if (!e.is_number_integer() || e.get<int64_t>() < 0)
    fail("scheduler state: 'last_epoch' should be a non-negative integer, got {}", e.dump());
  const size_t n = lrs_.size();
  auto base = numbers_from_json(field(s, "base_lrs"), "base_lrs", n);
  auto lrs = numbers_from_json(field(s, "lrs"), "lrs", n);
  auto mom = numbers_from_json(field(s, "momentum"), "momentum", momentum_.size());
  load_extra_state(field(s, "extra"));  // may throw: commit the rest only afterwards
  last_epoch_ = e.get<int64_t>();
  base_lrs_ = std::move(base);
  lrs_ = std::move(lrs);
  momentum_ = std::move(mom);
}

}  // namespace rtune::sched
