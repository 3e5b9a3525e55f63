"""JPEGs for the partial-decode tests (tests/data/test_decode.cpp): every chroma subsampling Pillow
writes, grayscale, restart markers, odd sizes, and a progressive file (which the region decoder must
decline). Content is a colour gradient plus noise, so that chroma upsampling differences would show.
Run: python3 tests/gen/make_region_jpegs.py tests/fixtures/data/region   (needs pillow, numpy)
"""
import os, sys
import numpy as np
import PIL
from PIL import Image

OUT = sys.argv[1]
os.makedirs(OUT, exist_ok=True)
rng = np.random.default_rng(7)


def picture(h, w):
    y, x = np.mgrid[0:h, 0:w]
    r = (x * 255 // max(w - 1, 1))
    g = (y * 255 // max(h - 1, 1))
    b = ((x + y) * 7) % 256
    img = np.stack([r, g, b], -1) + rng.integers(-40, 41, (h, w, 3))
    return Image.fromarray(np.clip(img, 0, 255).astype(np.uint8), "RGB")


cases = {
    "s420_131x97.jpg": (picture(131, 97), {"quality": 90, "subsampling": 2}),
    "s422_75x203.jpg": (picture(75, 203), {"quality": 85, "subsampling": 1}),
    "s444_64x80.jpg": (picture(64, 80), {"quality": 95, "subsampling": 0}),
    "s420_restart_120x150.jpg": (picture(120, 150), {"quality": 80, "subsampling": 2, "restart_marker_rows": 1}),
    "gray_99x61.jpg": (picture(99, 61).convert("L"), {"quality": 90}),
    "s420_1x40.jpg": (picture(1, 40), {"quality": 90, "subsampling": 2}),
    "progressive_60x70.jpg": (picture(60, 70), {"quality": 85, "progressive": True}),
    "s420_20x34.jpg": (picture(20, 34), {"quality": 90, "subsampling": 2}),  # a 2-column iMCU at the right
}
for name, (im, kw) in cases.items():
    im.save(f"{OUT}/{name}", **kw)
# Samplings Pillow cannot write (4:1:0, 3x1) come from libjpeg, through the encoder in
# tests/data/test_jpeg_sampling.cpp (committed files); Pillow's decode of them is the reference.
from safetensors.numpy import save_file
refs = {}
for name in ("s410_53x91.jpg", "s31_53x91.jpg"):
    refs[name] = np.asarray(Image.open(f"{OUT}/{name}").convert("RGB")).copy()
save_file(refs, f"{OUT}/pil_decoded.safetensors", metadata={"pillow": PIL.__version__})
with open(f"{OUT}/README", "w") as f:
    f.write(f"Written by tests/gen/make_region_jpegs.py with Pillow {PIL.__version__}; s410_53x91.jpg and "
            "s31_53x91.jpg by libjpeg-turbo 2.1.5 (the encoder of tests/data/test_jpeg_sampling.cpp), decoded by "
            "Pillow into pil_decoded.safetensors.\n")
print("wrote", len(cases), "files to", OUT)
