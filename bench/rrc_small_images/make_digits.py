"""Digit-like 32x32 images (white glyph on dark, random font/size/offset/rotation/blur/noise).
python3 make_digits.py OUT CHARS N_TRAIN N_VAL SEED"""
import os, sys, random
import numpy as np
from PIL import Image, ImageDraw, ImageFont, ImageFilter
out, chars, ntr, nva, seed = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
fonts = [f"/usr/share/fonts/truetype/dejavu/{f}" for f in os.listdir("/usr/share/fonts/truetype/dejavu") if f.endswith(".ttf")]
fonts.sort()
rng = random.Random(seed); nrng = np.random.default_rng(seed)
def glyph(ch):
    S = 64
    img = Image.new("L", (S, S), 0)
    d = ImageDraw.Draw(img)
    f = ImageFont.truetype(rng.choice(fonts), rng.randint(30, 46))
    x0, y0, x1, y1 = d.textbbox((0, 0), ch, font=f)
    d.text(((S - (x1 - x0)) / 2 - x0 + rng.uniform(-5, 5), (S - (y1 - y0)) / 2 - y0 + rng.uniform(-5, 5)), ch, fill=255, font=f,
           stroke_width=rng.choice([0, 0, 1, 2]), stroke_fill=255)
    img = img.rotate(rng.uniform(-20, 20), resample=Image.BILINEAR)
    img = img.resize((32, 32), Image.BILINEAR).filter(ImageFilter.GaussianBlur(rng.uniform(0, 0.8)))
    a = np.asarray(img, np.float32) * rng.uniform(0.6, 1.0) + nrng.normal(0, rng.uniform(0, 20), (32, 32)) + rng.uniform(0, 40)
    a = np.clip(a, 0, 255).astype(np.uint8)
    return Image.fromarray(np.stack([a] * 3, -1), "RGB")
for split, n in (("train", ntr), ("val", nva)):
    for c, ch in enumerate(chars):
        dd = os.path.join(out, split, str(c)); os.makedirs(dd, exist_ok=True)
        for k in range(n):
            glyph(ch).save(os.path.join(dd, f"{k:04d}.png"))
