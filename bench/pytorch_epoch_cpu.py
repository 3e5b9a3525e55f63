"""PyTorch twin of one `rtune train` epoch on the CPU (bench/compare_cpu_epoch.sh runs both): torchvision
ImageFolder + RandomResizedCrop/flip/normalize, DataLoader, ResNet-18 from scratch, SGD(momentum 0.9),
one epoch over the folder, then a validation pass; prints wall-clock seconds and img/s as JSON.
Usage: python3 bench/pytorch_epoch_cpu.py --data DIR --size 112 --batch 16 --workers 2 [--freeze backbone]"""
import argparse, json, time
import torch, torchvision
from torchvision import transforms as T

ap = argparse.ArgumentParser()
ap.add_argument("--data", required=True)
ap.add_argument("--size", type=int, default=112)
ap.add_argument("--batch", type=int, default=16)
ap.add_argument("--workers", type=int, default=2)
ap.add_argument("--freeze", choices=["none", "backbone"], default="none")
ap.add_argument("--device", default="cpu", help="cpu or cuda (bench/gpu.sh runs the same epoch on a GPU)")
ap.add_argument("--precision", choices=["fp32", "bf16"], default="fp32",
                help="bf16: torch.autocast(bfloat16) + channels_last, as rtune --precision bf16 (GPU, or a CPU with AVX512_BF16)")
a = ap.parse_args()
dev = torch.device(a.device)
torch.manual_seed(0)
norm = T.Normalize([0.485, 0.456, 0.406], [0.229, 0.224, 0.225])
train = torchvision.datasets.ImageFolder(a.data, T.Compose([T.RandomResizedCrop(a.size), T.RandomHorizontalFlip(), T.ToTensor(), norm]))
loader = torch.utils.data.DataLoader(train, batch_size=a.batch, shuffle=True, num_workers=a.workers,
                                     pin_memory=dev.type == "cuda")
model = torchvision.models.resnet18(num_classes=len(train.classes)).to(dev)
if a.precision == "bf16":
    model = model.to(memory_format=torch.channels_last)
if a.freeze == "backbone":
    for n, p in model.named_parameters():
        p.requires_grad = n.startswith("fc.")
opt = torch.optim.SGD([p for p in model.parameters() if p.requires_grad], lr=0.01, momentum=0.9)
model.train()
t0 = time.perf_counter()
seen = 0
for x, y in loader:
    x, y = x.to(dev, non_blocking=True), y.to(dev, non_blocking=True)
    opt.zero_grad(set_to_none=True)
    with torch.autocast(dev.type, dtype=torch.bfloat16, enabled=a.precision == "bf16"):
        logits = model(x.to(memory_format=torch.channels_last) if a.precision == "bf16" else x)
    loss = torch.nn.functional.cross_entropy(logits.float(), y)
    loss.backward()
    opt.step()
    seen += len(y)
if dev.type == "cuda":
    torch.cuda.synchronize()
dt = time.perf_counter() - t0
print(json.dumps({"framework": f"pytorch {torch.__version__}", "images": seen, "epoch_seconds": round(dt, 2),
                  "img_per_s": round(seen / dt, 1), "freeze": a.freeze, "device": a.device, "precision": a.precision, "threads": torch.get_num_threads()}))
