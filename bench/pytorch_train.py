#!/usr/bin/env python3
"""PyTorch reference for `rtune bench train` and, with --infer, `rtune bench infer`: synthetic-data
ResNet throughput on one GPU.

Eager channels-last bf16 autocast (fp32 master weights) and, with --compile, torch.compile of the
same model; Adam; warm-up steps, then timed steps. Prints img/s and peak device memory as one JSON
line per run. Matches the workloads of issue 9: --arch resnet18|resnet50, --batch 256,
--freeze backbone (only fc trains), --precision fp32|bf16. --infer times forward passes only, in eval
mode under torch.no_grad() (--freeze is then irrelevant), as `rtune bench infer`.

  python3 bench/pytorch_train.py --arch resnet50 --batch 256 --precision bf16 [--compile] [--freeze backbone]
  python3 bench/pytorch_train.py --infer --arch resnet50 --batch 256 --precision bf16
"""
import argparse
import json
import time

import torch
import torchvision


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--arch", default="resnet50")
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--precision", choices=["fp32", "bf16"], default="bf16")
    ap.add_argument("--freeze", choices=["none", "backbone"], default="none")
    ap.add_argument("--compile", action="store_true")
    ap.add_argument("--infer", action="store_true", help="forward only, eval mode, no grad (rtune bench infer)")
    ap.add_argument("--channels-last", action="store_true", help="channels_last in fp32 too (bf16 always is)")
    ap.add_argument("--warmup", type=int, default=10)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--device", default="cuda", help="cuda or cpu (the CPU twin of `rtune bench train --device cpu`)")
    a = ap.parse_args()

    dev = torch.device(a.device)
    cuda = dev.type == "cuda"
    if cuda:
        torch.backends.cudnn.benchmark = True
        torch.backends.cuda.matmul.allow_tf32 = a.precision != "fp32"
        torch.backends.cudnn.allow_tf32 = a.precision != "fp32"
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    model = getattr(torchvision.models, a.arch)(num_classes=1000).to(dev)  # width 64, as rtune's default
    fmt = torch.channels_last if a.precision == "bf16" or a.channels_last else torch.contiguous_format
    model = model.to(memory_format=fmt)
    if a.freeze == "backbone":
        for n, p in model.named_parameters():
            p.requires_grad = n.startswith("fc.")
    params = [p for p in model.parameters() if p.requires_grad]
    opt = torch.optim.Adam(params, lr=1e-3)
    step_model = torch.compile(model) if a.compile else model
    x = torch.randn(a.batch, 3, a.size, a.size, device=dev).to(memory_format=fmt)
    y = torch.randint(0, 1000, (a.batch,), device=dev)
    model.train(not a.infer)

    def forward():
        with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=a.precision == "bf16"):
            return step_model(x)

    def step():
        if a.infer:
            with torch.no_grad():
                forward()
            return
        opt.zero_grad(set_to_none=True)
        loss = torch.nn.functional.cross_entropy(forward().float(), y)
        loss.backward()
        opt.step()

    for _ in range(a.warmup):
        step()
    sync()
    if cuda:
        torch.cuda.reset_peak_memory_stats()
    t0 = time.perf_counter()
    for _ in range(a.steps):
        step()
    sync()
    dt = time.perf_counter() - t0
    print(json.dumps({
        "framework": f"pytorch {torch.__version__}" + (" compile" if a.compile else " eager"),
        "mode": "infer" if a.infer else "train",
        "arch": a.arch, "batch": a.batch, "precision": a.precision, "freeze": None if a.infer else a.freeze,
        "channels_last": fmt == torch.channels_last, "img_per_s": round(a.batch * a.steps / dt, 1),
        "peak_memory_gib": round(torch.cuda.max_memory_allocated() / 2**30, 2) if cuda else None,
        "device": torch.cuda.get_device_name() if cuda else f"cpu ({torch.get_num_threads()} threads)",
        "cudnn": torch.backends.cudnn.version() if cuda else None,
    }))


if __name__ == "__main__":
    main()
