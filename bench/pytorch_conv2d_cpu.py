"""PyTorch counterpart of `rtune bench conv`: the same layers, batch and passes, float32 on the CPU.
Usage: python3 bench/pytorch_conv2d_cpu.py [batch] [reps]   (set OMP/torch threads to match rtune)."""
import sys, time
import torch

N = int(sys.argv[1]) if len(sys.argv) > 1 else 8
reps = int(sys.argv[2]) if len(sys.argv) > 2 else 3
layers = [("conv1 7x7/2 3->64 @224", 3, 224, 64, 7, 2, 3), ("layer1 3x3 64->64 @56", 64, 56, 64, 3, 1, 1),
          ("layer2 3x3/2 64->128 @56", 64, 56, 128, 3, 2, 1), ("layer2 3x3 128->128 @28", 128, 28, 128, 3, 1, 1),
          ("layer2 down 1x1/2 64->128", 64, 56, 128, 1, 2, 0), ("layer3 3x3 256->256 @14", 256, 14, 256, 3, 1, 1),
          ("layer4 3x3 512->512 @7", 512, 7, 512, 3, 1, 1)]


def best(f):
    f()
    b = 1e30
    for _ in range(reps):
        t = time.perf_counter(); f(); b = min(b, time.perf_counter() - t)
    return b


print(f"PyTorch {torch.__version__} conv2d CPU benchmark: float32, batch {N}, {torch.get_num_threads()} threads, best of {reps}")
print(f"{'layer':28s} {'forward':>10s} {'bwd-input':>10s} {'bwd-weight':>10s}   (GFLOP/s)")
tot_f = tot_s = 0.0
with torch.no_grad():
    for name, C, H, K, R, s, p in layers:
        x = torch.randn(N, C, H, H); w = torch.randn(K, C, R, R)
        y = torch.nn.functional.conv2d(x, w, None, s, p)
        gy = torch.randn_like(y)
        flop = 2.0 * y.numel() * C * R * R
        tf = best(lambda: torch.nn.functional.conv2d(x, w, None, s, p))
        ti = best(lambda: torch.nn.grad.conv2d_input(x.shape, w, gy, s, p))
        tw = best(lambda: torch.nn.grad.conv2d_weight(x, w.shape, gy, s, p))
        print(f"{name:28s} {flop/tf*1e-9:10.1f} {flop/ti*1e-9:10.1f} {flop/tw*1e-9:10.1f}")
        tot_f += 3 * flop; tot_s += tf + ti + tw
print(f"{'overall':28s} {tot_f/tot_s*1e-9:10.1f} GFLOP/s over all passes")
