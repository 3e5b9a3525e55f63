"""Crop + bilinear resize references for rtune's io/transforms/resize.cpp, from Pillow alone.

torchvision's F.resized_crop on a PIL image is img.crop((left, top, left + w, top + h)).resize((ow, oh),
BILINEAR) (transforms/_functional_pil.py); this script calls exactly that on a seeded 61x83 noise image
for ~60 boxes: enlargements, mild and strong shrinks (83 -> 3 gives > 40 taps), single-axis changes,
height shrink with width growth (Pillow 13 runs the vertical pass first there), 1-pixel crops and
outputs, the whole image, and boxes touching the bottom-right corner (where a 16-byte vector load in the
horizontal pass would pass the end of the buffer and rtune falls back to Pillow's scalar loop).
Run: python3 tests/gen/make_resize_cases.py tests/fixtures/data   (needs pillow, numpy, safetensors)
Writes OUT/resize_cases.safetensors: "source" (61x83x3 u8), "boxes" (N x 4 i64: top, left, height, width),
"sizes" (N x 2 i64: out_h, out_w), "out.<i>" (out_h x out_w x 3 u8); Pillow's version in the metadata.
"""
import os, sys
import numpy as np
import PIL
from PIL import Image
from safetensors.numpy import save_file

OUT = sys.argv[1]
os.makedirs(OUT, exist_ok=True)
rng = np.random.default_rng(20240611)
H, W = 61, 83
src = rng.integers(0, 256, (H, W, 3), dtype=np.uint8)
src[0, :, 0] = 255  # saturated lines: a sum that rounds past 255 or below 0 would show
src[:, -1, 1] = 0
img = Image.fromarray(src, "RGB")

# (top, left, height, width, out_h, out_w)
cases = [
    # whole image
    (0, 0, H, W, H, W),      # same size: a copy
    (0, 0, H, W, 3, 3),      # strong shrink both ways (83 -> 3: 56 taps)
    (0, 0, H, W, 90, 100),   # enlarge both
    (0, 0, H, W, H, 3),      # width only, strong
    (0, 0, H, W, 1, W),      # height only, to 1 row
    (0, 0, H, W, 20, 120),   # height shrinks, width grows: vertical first
    (0, 0, H, W, 1, 1),
    # inner boxes
    (10, 20, 15, 17, 40, 50),  # enlarge
    (5, 7, 50, 60, 45, 52),    # mild shrink
    (3, 2, 58, 81, 2, 3),      # strong shrink
    (4, 5, 30, 40, 30, 13),    # width only, shrink
    (0, 30, 61, 53, 61, 97),   # width only, enlarge, full height
    (7, 8, 40, 30, 11, 30),    # height only, shrink
    (2, 3, 20, 25, 57, 25),    # height only, enlarge
    (0, 0, 61, 20, 15, 47),    # height shrinks, width grows (vertical first)
    (1, 1, 10, 60, 30, 12),    # height grows, width shrinks
    (12, 9, 33, 33, 32, 32),   # shrink by one pixel
    (12, 9, 33, 33, 34, 34),   # enlarge by one pixel
    # 1-pixel crops and outputs
    (30, 40, 1, 20, 1, 50),
    (30, 40, 1, 20, 7, 9),
    (10, 82, 30, 1, 40, 1),    # last column
    (60, 0, 1, 83, 1, 40),     # last row
    (60, 82, 1, 1, 5, 5),      # bottom-right pixel, enlarged
    (60, 82, 1, 1, 1, 1),      # bottom-right pixel, copied
    (5, 5, 40, 50, 1, 20),
    (5, 5, 40, 50, 20, 1),
    (0, 0, 61, 1, 1, 1),
    # boxes touching the bottom-right corner
    (H - 10, W - 10, 10, 10, 3, 3),
    (H - 10, W - 10, 10, 10, 25, 25),
    (H - 5, W - 37, 5, 37, 5, 11),
    (H - 40, W - 7, 40, 7, 13, 9),
    (H - 2, W - 2, 2, 2, 9, 9),
    (H - 31, W - 41, 31, 41, 7, 80),
    (H - 20, W - 60, 20, 60, 20, 4),   # width only, strong shrink into the corner
    (H - 41, W - 23, 41, 23, 5, 40),   # vertical first, into the corner
    (H - 60, W - 82, 60, 82, 17, 2),
    (H - 1, W - 50, 1, 50, 1, 3),      # last row only, shrink
]
# Seeded random boxes, half of each edge snapped to the right / bottom border.
while len(cases) < 60:
    h, w = int(rng.integers(1, H + 1)), int(rng.integers(1, W + 1))
    top = H - h if rng.random() < 0.5 else int(rng.integers(0, H - h + 1))
    left = W - w if rng.random() < 0.5 else int(rng.integers(0, W - w + 1))
    oh, ow = int(rng.integers(1, 49)), int(rng.integers(1, 49))
    cases.append((top, left, h, w, oh, ow))

tensors = {"source": src}
for i, (top, left, h, w, oh, ow) in enumerate(cases):
    assert 0 <= top and top + h <= H and 0 <= left and left + w <= W
    out = img.crop((left, top, left + w, top + h)).resize((ow, oh), Image.BILINEAR)
    tensors[f"out.{i}"] = np.asarray(out).copy()
tensors["boxes"] = np.array([c[:4] for c in cases], dtype=np.int64)
tensors["sizes"] = np.array([c[4:] for c in cases], dtype=np.int64)
save_file(tensors, f"{OUT}/resize_cases.safetensors",
          metadata={"pillow": PIL.__version__, "numpy": np.__version__, "cases": str(len(cases))})
print(f"{len(cases)} cases, Pillow {PIL.__version__}")
