// libgomp spin-waits between parallel regions unless OMP_WAIT_POLICY says otherwise, and reads that
// variable only when the library loads. On a 2-core machine the spinning workers starve the loader
// threads and any other process: measured here, the same 3-epoch run took 6.2 s with
// OMP_WAIT_POLICY=passive and 53.5 s with the default (identical results). So the training commands
// re-execute themselves once with OMP_WAIT_POLICY=passive when the user has not set it.
#pragma once

namespace rtune::finetune {

// No-op when OMP_WAIT_POLICY is already set (by the user or by a previous re-exec) or when the
// re-exec fails (the command then simply runs with the default policy).
void ensure_passive_omp_wait();

}  // namespace rtune::finetune
