"""WebP decode references for rtune's io/image tests, from Pillow alone.

Pillow opens every WebP with libwebp's WebPAnimDecoder (RGBA) and shows the first frame; the reference
is Image.open(f).convert("RGB"), what torchvision's loader gives. Writes OUT/webp/*.webp and
OUT/webp_refs.safetensors (Pillow and libwebp versions in its metadata).
Run: python3 tests/gen/make_webp_fixtures.py tests/fixtures/data   (needs pillow, numpy, safetensors)
"""
import os, sys
import numpy as np
import PIL
from PIL import Image, features
from safetensors.numpy import save_file

OUT = sys.argv[1]
os.makedirs(f"{OUT}/webp", exist_ok=True)
rng = np.random.default_rng(4321)

h, w = 29, 37
noise = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
yy, xx = np.mgrid[0:48, 0:64]
smooth = np.dstack([xx * 4, yy * 5, (xx * 2 + yy * 3) % 256]).astype(np.uint8)  # chroma edges, gradients
alpha = rng.integers(0, 256, (h, w), dtype=np.uint8)
alpha[:, :6] = 0  # fully transparent columns: their RGB is whatever the decoder gives under alpha 0
rgb_im = Image.fromarray(noise, "RGB")
rgba_im = Image.fromarray(np.dstack([noise, alpha]), "RGBA")
gray_im = Image.fromarray(noise[..., 1], "L")
smooth_im = Image.fromarray(smooth, "RGB")

files = {
    "rgb_lossy.webp": (rgb_im, {"quality": 80}),
    "rgb_lossless.webp": (rgb_im, {"lossless": True}),
    "rgba_lossy.webp": (rgba_im, {"quality": 70}),
    "rgba_lossless.webp": (rgba_im, {"lossless": True}),
    "gray_lossy.webp": (gray_im, {"quality": 90}),
    "smooth_lossy.webp": (smooth_im, {"quality": 60}),
}
refs = {}
for name, (im, kw) in files.items():
    im.save(f"{OUT}/webp/{name}", **kw)
    refs[name] = np.asarray(Image.open(f"{OUT}/webp/{name}").convert("RGB")).copy()
# Animated: Pillow shows frame 0.
frames = [smooth_im, Image.fromarray(255 - smooth, "RGB")]
frames[0].save(f"{OUT}/webp/anim.webp", save_all=True, append_images=frames[1:], duration=100, quality=75)
im = Image.open(f"{OUT}/webp/anim.webp")
assert im.n_frames == 2
refs["anim.webp"] = np.asarray(im.convert("RGB")).copy()

data = open(f"{OUT}/webp/smooth_lossy.webp", "rb").read()
open(f"{OUT}/webp/truncated.webp", "wb").write(data[: len(data) // 2])
# A valid header, then garbage where the compressed frame is.
open(f"{OUT}/webp/corrupt.webp", "wb").write(data[:40] + bytes(rng.integers(0, 256, len(data) - 40, dtype=np.uint8)))

save_file(refs, f"{OUT}/webp_refs.safetensors",
          metadata={"pillow": PIL.__version__, "libwebp": str(features.version("webp"))})
print("wrote", sorted(refs), "pillow", PIL.__version__, "libwebp", features.version("webp"))
