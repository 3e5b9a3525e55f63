"""Every 10th clean training digit as a quality-75 JPEG, grayscale (jpgL/) and RGB (jpgRGB/)."""
import os, glob
from PIL import Image
for mode in ("L", "RGB"):
    for f in sorted(glob.glob("/tmp/rrc/clean/train/*/*.png"))[::10]:
        d = f.replace("/clean/train/", f"/jpg{mode}/train/").replace(".png", ".jpg")
        os.makedirs(os.path.dirname(d), exist_ok=True)
        Image.open(f).convert(mode).save(d, quality=75)
