"""RandomResizedCrop on very small images (28x28 and 32x32 digit-like pictures), from torchvision itself.

Issue 22 asked whether rtune's RandomResizedCrop behaves like torchvision's on 32-px digits. This script
records what torchvision's T.RandomResizedCrop does there, for tests/data/test_small_rrc.cpp:
  - the crop-box distribution: 100,000 draws of T.RandomResizedCrop.get_params (default scale (0.08, 1),
    ratio (3/4, 4/3)) on a 28x28 and on a 32x32 image, as a histogram over (h, w) ("hist.28", "hist.32":
    rows h, w, count), to be compared with rtune's draws by a chi-square test;
  - pixels: T.RandomResizedCrop(size)(pil_image) under torch.manual_seed(k), with the box that seed gives
    (get_params under the same seed), for outputs of the input's own size (mostly an enlargement, since a
    crop is on average 0.49 of the area), 64x64, 16x16 (a shrink), and one 224x224 (the tutorial's size);
  - the order of Pillow's two passes when both axes shrink ("order.*"): crops of a 61x83 noise image
    resized to the sizes either side of where Pillow 13.0 switches to the vertical pass first.
Run: python3 tests/gen/make_small_rrc_cases.py tests/fixtures/data   (needs torch, torchvision, pillow,
numpy, safetensors). Writes OUT/small_rrc_cases.safetensors; the versions are in its metadata.
"""
import os, sys
import numpy as np
import PIL
import torch
import torchvision
import torchvision.transforms as T
from PIL import Image, ImageDraw, ImageFilter
from safetensors.numpy import save_file

OUT = sys.argv[1]
os.makedirs(OUT, exist_ok=True)
SCALE, RATIO = [0.08, 1.0], [3.0 / 4.0, 4.0 / 3.0]


def digit(size, seed):
    """A '3'-like white stroke on a dark, noisy background (drawn with lines, no font needed)."""
    rng = np.random.default_rng(seed)
    big = Image.new("L", (4 * size, 4 * size), 0)
    d = ImageDraw.Draw(big)
    s = 4 * size
    d.arc((0.25 * s, 0.12 * s, 0.72 * s, 0.5 * s), 200, 90, fill=255, width=s // 10)
    d.arc((0.22 * s, 0.45 * s, 0.75 * s, 0.88 * s), 270, 160, fill=255, width=s // 10)
    small = big.resize((size, size), Image.BILINEAR).filter(ImageFilter.GaussianBlur(0.6))
    a = np.asarray(small, np.float32) * 0.9 + rng.normal(0, 12, (size, size)) + 20
    g = np.clip(a, 0, 255).astype(np.uint8)
    rgb = np.stack([g, np.clip(g.astype(int) + 7, 0, 255).astype(np.uint8), g // 2 + 60], -1)  # channels differ
    return Image.fromarray(rgb, "RGB")


tensors = {}
boxes, sizes, sources = [], [], []
for size, seed in ((28, 28), (32, 32)):
    img = digit(size, seed)
    tensors[f"digit{size}"] = np.asarray(img).copy()
    # Box distribution over (h, w).
    torch.manual_seed(size)
    probe = torch.zeros(1, size, size)
    counts = {}
    for _ in range(100_000):
        i, j, h, w = T.RandomResizedCrop.get_params(probe, SCALE, RATIO)
        counts[(h, w)] = counts.get((h, w), 0) + 1
    tensors[f"hist.{size}"] = np.array([(h, w, c) for (h, w), c in sorted(counts.items())], dtype=np.int64)
    # Pixels.
    outs = [size] * 20 + [64] * 4 + [16] * 4 + ([224] if size == 32 else [])
    for k, o in enumerate(outs):
        torch.manual_seed(1000 * size + k)
        box = T.RandomResizedCrop.get_params(img, SCALE, RATIO)
        torch.manual_seed(1000 * size + k)
        out = T.RandomResizedCrop(o)(img)  # PIL path: F.resized_crop -> img.crop(...).resize(..., BILINEAR)
        tensors[f"out.{len(boxes)}"] = np.asarray(out).copy()
        boxes.append(box)
        sizes.append((o, o))
        sources.append(size)
# Pillow 13.0's pass order when both axes shrink (the 24x19 -> 16x16 case above sits there): crops of a
# noise image resized to the two output widths either side of where Pillow switches to vertical-first,
# with the order Pillow took, told apart by running the two one-axis resizes in each order.
rng = np.random.default_rng(61)
noise = Image.fromarray(rng.integers(0, 256, (61, 83, 3), dtype=np.uint8), "RGB")
tensors["noise"] = np.asarray(noise).copy()
order_boxes, order_sizes, order_vfirst = [], [], []
for top, left, ih, iw in ((0, 0, 40, 40), (3, 5, 24, 19), (10, 2, 50, 70), (1, 30, 60, 31), (20, 20, 13, 17)):
    c = noise.crop((left, top, left + iw, top + ih))
    for oh in sorted({1, 2, ih // 3, ih // 2, ih - 3, ih - 1}):
        for ow in range(1, iw):
            if ow == iw - 1 or (ih - oh > 2 * (iw - ow)) != (ih - oh > 2 * (iw - ow - 1)):
                for o in (ow, ow + 1):
                    if o >= iw:
                        continue
                    full = np.asarray(c.resize((o, oh), Image.BILINEAR))
                    hv = np.asarray(c.resize((o, ih), Image.BILINEAR).resize((o, oh), Image.BILINEAR))
                    vh = np.asarray(c.resize((iw, oh), Image.BILINEAR).resize((o, oh), Image.BILINEAR))
                    if (hv == vh).all():
                        continue  # this size does not tell the orders apart
                    assert (full == hv).all() != (full == vh).all()
                    tensors[f"order.out.{len(order_boxes)}"] = full.copy()
                    order_boxes.append((top, left, ih, iw))
                    order_sizes.append((oh, o))
                    order_vfirst.append(int((full == vh).all()))
                break
tensors["order.boxes"] = np.array(order_boxes, dtype=np.int64)
tensors["order.sizes"] = np.array(order_sizes, dtype=np.int64)
tensors["order.vertical_first"] = np.array(order_vfirst, dtype=np.int64)

tensors["boxes"] = np.array(boxes, dtype=np.int64)
tensors["sizes"] = np.array(sizes, dtype=np.int64)
tensors["source"] = np.array(sources, dtype=np.int64)  # 28 or 32: which digit<size> the case crops
save_file(tensors, f"{OUT}/small_rrc_cases.safetensors",
          metadata={"torch": torch.__version__, "torchvision": torchvision.__version__, "pillow": PIL.__version__,
                    "numpy": np.__version__, "cases": str(len(boxes)), "hist_draws": "100000"})
print(f"{len(boxes)} crop cases, {len(order_boxes)} pass-order cases ({sum(order_vfirst)} vertical first); torch {torch.__version__}, torchvision {torchvision.__version__}, Pillow {PIL.__version__}")
