# engine/ + kernels/ (CPU backend and dispatch): the tensor, autograd and op core.
