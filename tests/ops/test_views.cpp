// The views (engine/tensor: view, reshape, flatten, permute, transpose, narrow, select, expand,
// unsqueeze): float64 central-difference gradient checks through each.
#include "tests/ops/ops_test_util.h"

using namespace rtune;
using namespace rtune::opstest;

TEST_CASE("gradcheck views: view, reshape, flatten, permute, transpose, narrow, select, expand, unsqueeze") {
  Rng r(71);
  Tensor x = rn({2, 3, 4}, r);
  CHECK_GRADCHECK([](const std::vector<Tensor>& in) { return in[0].view({6, 4}); }, {x}, {true}, 72);
  CHECK_GRADCHECK([](const std::vector<Tensor>& in) { return in[0].permute({2, 0, 1}).reshape({4, 6}); }, {x},
                  {true}, 73);
  CHECK_GRADCHECK([](const std::vector<Tensor>& in) { return in[0].flatten(1); }, {x}, {true}, 74);
  CHECK_GRADCHECK([](const std::vector<Tensor>& in) { return in[0].transpose(0, 2).contiguous(); }, {x}, {true}, 75);
  CHECK_GRADCHECK([](const std::vector<Tensor>& in) { return in[0].narrow(1, 1, 2); }, {x}, {true}, 76);
  CHECK_GRADCHECK([](const std::vector<Tensor>& in) { return in[0].select(2, 3); }, {x}, {true}, 77);
  Tensor y = rn({3, 1}, r);
  CHECK_GRADCHECK([](const std::vector<Tensor>& in) { return in[0].expand({2, 3, 5}).contiguous(); }, {y}, {true}, 78);
  CHECK_GRADCHECK([](const std::vector<Tensor>& in) { return in[0].unsqueeze(0).squeeze(0); }, {y}, {true}, 79);
}
