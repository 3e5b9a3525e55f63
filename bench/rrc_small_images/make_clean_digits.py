"""MNIST-like 32x32 digits: clean white strokes on black, centred by mass, no noise.
python3 make_clean_digits.py OUT N_TRAIN N_VAL SEED"""
import os, sys, random
import numpy as np
from PIL import Image, ImageDraw, ImageFont, ImageFilter
out, ntr, nva, seed = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
fonts = sorted(f"/usr/share/fonts/truetype/dejavu/{f}" for f in os.listdir("/usr/share/fonts/truetype/dejavu") if f.endswith(".ttf"))
rng = random.Random(seed)
def glyph(ch):
    S = 96
    img = Image.new("L", (S, S), 0); d = ImageDraw.Draw(img)
    f = ImageFont.truetype(rng.choice(fonts), rng.randint(52, 66))
    d.text((S / 2, S / 2), ch, fill=255, font=f, anchor="mm", stroke_width=rng.choice([1, 2, 3, 4]), stroke_fill=255)
    img = img.rotate(rng.uniform(-15, 15), resample=Image.BILINEAR)
    a = np.asarray(img, np.float64); ys, xs = np.nonzero(a > 0)
    w = a[ys, xs]; cy, cx = (ys * w).sum() / w.sum(), (xs * w).sum() / w.sum()
    img = img.transform((S, S), Image.AFFINE, (1, 0, cx - S / 2 + rng.uniform(-3, 3), 0, 1, cy - S / 2 + rng.uniform(-3, 3)), Image.BILINEAR)
    return img.resize((32, 32), Image.BILINEAR).convert("RGB")
for split, n in (("train", ntr), ("val", nva)):
    for c in range(10):
        dd = os.path.join(out, split, str(c)); os.makedirs(dd, exist_ok=True)
        for k in range(n): glyph(str(c)).save(os.path.join(dd, f"{k:04d}.png"))
