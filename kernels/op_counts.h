// How many times each façade op ran, for tests that prove work was skipped (e.g. a frozen backbone
// issues no conv2d_backward_weight). Cheap: one relaxed atomic increment per op call.
#pragma once
#include <cstdint>
#include <string_view>

namespace rtune::kernels {
int64_t op_count(std::string_view op);
void reset_op_counts();
void count_op(std::string_view op);
}  // namespace rtune::kernels
