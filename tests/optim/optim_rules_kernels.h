// Host interface of optim_rules_kernels.cu (test only): runs `steps` updates of optimizer `opt`
// (0 SGD, 1 Adam/AdamW, 2 RMSprop) in a CUDA kernel from zero state. Returns nullptr or a CUDA error.
#pragma once
#include <vector>

#include "kernels/update_rules.h"

namespace rtune::test {

bool cuda_device_present();
const char* run_rules_on_gpu(int opt, int steps, std::vector<float>& p, const std::vector<float>& g,
                             const optim::SgdHyper& sh, const optim::AdamHyper& ah, const optim::RmspropHyper& rh);
const char* run_rules_on_gpu(int opt, int steps, std::vector<double>& p, const std::vector<double>& g,
                             const optim::SgdHyper& sh, const optim::AdamHyper& ah, const optim::RmspropHyper& rh);

}  // namespace rtune::test
