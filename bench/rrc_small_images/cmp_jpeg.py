"""rtune's loader vs PIL on small JPEG digits, deterministic pipelines: the RandomResizedCrop path with a
box forced to the whole image (scale=1-1, ratio=1-1: the crop-only JPEG decode, then a 32->32 copy) and
center_crop=32 (full decode); |difference| against PIL's decode converted to RGB."""
import os, subprocess, sys, numpy as np
from PIL import Image
for mode in ("L", "RGB"):
    root = f"/tmp/rrc/jpg{mode}/train"
    for spec in ("random_resized_crop=32:scale=1-1:ratio=1-1", "center_crop=32"):
        out = f"/tmp/rrc/dump_{mode}"; os.makedirs(out, exist_ok=True)
        paths = subprocess.run(["./loader_dump", root, spec, out], capture_output=True, text=True).stdout.split()
        d = []
        for i, p in enumerate(paths):
            r = np.fromfile(f"{out}/{i}.rgb", np.uint8).reshape(32, 32, 3).astype(int)
            d.append(np.abs(r - np.asarray(Image.open(p).convert("RGB")).astype(int)))
        d = np.stack(d)
        print(f"JPEG {mode:3s} {spec:45s}: {len(paths)} images, max |d| {d.max()}, mean {d.mean():.4f}, images differing {np.mean(d.reshape(len(d), -1).max(1) > 0):.2f}")
