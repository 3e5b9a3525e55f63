"""rtune's loader with random_resized_crop=32 (default scale/ratio) on 32-px PNG and JPEG digits vs PIL's
img.crop(box).resize((32, 32), BILINEAR) (torchvision's F.resized_crop) for the box the loader drew."""
import os, subprocess, numpy as np
from PIL import Image
for root in ("/tmp/rrc/clean/train", "/tmp/rrc/jpgL/train", "/tmp/rrc/jpgRGB/train"):
    out = "/tmp/rrc/dump_rrc"; os.makedirs(out, exist_ok=True)
    lines = subprocess.run(["./loader_dump", root, "random_resized_crop=32", out], capture_output=True, text=True).stdout.splitlines()
    d = []
    for i, l in enumerate(lines):
        p, t, le, h, w = l.split(); t, le, h, w = map(int, (t, le, h, w))
        r = np.fromfile(f"{out}/{i}.rgb", np.uint8).reshape(32, 32, 3).astype(int)
        ref = np.asarray(Image.open(p).convert("RGB").crop((le, t, le + w, t + h)).resize((32, 32), Image.BILINEAR)).astype(int)
        d.append(np.abs(r - ref).max())
    print(f"{root}: {len(lines)} samples, max |rtune - PIL| {max(d)}, samples differing {sum(x > 0 for x in d)}")
