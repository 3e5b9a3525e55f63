"""TIFF decode references for rtune's io/image tests, from Pillow (and libtiff's tiffcp for a tiled file).

The reference is Image.open(f).convert("RGB") (first page), what torchvision's loader gives. Writes
OUT/tiff/*.tif and OUT/tiff_refs.safetensors (Pillow and libtiff versions in its metadata).
Run: python3 tests/gen/make_tiff_fixtures.py tests/fixtures/data   (needs pillow, numpy, safetensors;
tiffcp from Debian's libtiff-tools for tiled.tif)
"""
import os, shutil, subprocess, sys
import numpy as np
import PIL
from PIL import Image, features
from safetensors.numpy import save_file

OUT = sys.argv[1]
os.makedirs(f"{OUT}/tiff", exist_ok=True)
rng = np.random.default_rng(777)

h, w = 23, 31
noise = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
alpha = rng.integers(0, 256, (h, w), dtype=np.uint8)
yy, xx = np.mgrid[0:40, 0:56]
smooth = np.dstack([xx * 4, yy * 6, (xx * 2 + yy * 3) % 256]).astype(np.uint8)
rgb_im = Image.fromarray(noise, "RGB")
files = {
    "rgb_raw.tif": (rgb_im, {}),
    "rgb_lzw.tif": (rgb_im, {"compression": "tiff_lzw"}),
    "rgb_deflate.tif": (rgb_im, {"compression": "tiff_adobe_deflate"}),
    "rgb_packbits.tif": (rgb_im, {"compression": "packbits"}),
    "rgb_jpeg.tif": (Image.fromarray(smooth, "RGB"), {"compression": "jpeg", "quality": 90}),
    "rgba_lzw.tif": (Image.fromarray(np.dstack([noise, alpha]), "RGBA"), {"compression": "tiff_lzw"}),
    "gray.tif": (Image.fromarray(noise[..., 0], "L"), {}),
    "la.tif": (Image.fromarray(np.dstack([noise[..., 1], alpha]), "LA"), {}),
    "palette.tif": (rgb_im.quantize(colors=20), {}),
    "bilevel.tif": (Image.fromarray(noise[..., 2] > 127).convert("1"), {}),
    "bilevel_g4.tif": (Image.fromarray(noise[..., 2] > 100).convert("1"), {"compression": "group4"}),
}
refs = {}
for name, (im, kw) in files.items():
    im.save(f"{OUT}/tiff/{name}", **kw)
    refs[name] = np.asarray(Image.open(f"{OUT}/tiff/{name}").convert("RGB")).copy()
# Two pages: Pillow shows page 0.
Image.fromarray(smooth, "RGB").save(f"{OUT}/tiff/pages.tif", save_all=True,
                                     append_images=[Image.fromarray(255 - smooth, "RGB")])
assert Image.open(f"{OUT}/tiff/pages.tif").n_frames == 2
refs["pages.tif"] = np.asarray(Image.open(f"{OUT}/tiff/pages.tif").convert("RGB")).copy()
# Tiled, 16x16 tiles (edge tiles partly outside the image), and planar (one plane per channel).
if shutil.which("tiffcp"):
    subprocess.run(["tiffcp", "-t", "-w", "16", "-l", "16", f"{OUT}/tiff/rgb_raw.tif", f"{OUT}/tiff/tiled.tif"], check=True)
    subprocess.run(["tiffcp", "-p", "separate", f"{OUT}/tiff/rgb_lzw.tif", f"{OUT}/tiff/planar.tif"], check=True)
    # YCbCr 4:2:0 inside JPEG (what tiffcp -c jpeg writes for RGB input); Pillow has libtiff hand back RGB.
    Image.fromarray(smooth, "RGB").save(f"{OUT}/tiff/smooth_raw.tif")
    subprocess.run(["tiffcp", "-c", "jpeg:90", f"{OUT}/tiff/smooth_raw.tif", f"{OUT}/tiff/ycbcr_jpeg.tif"], check=True)
    os.remove(f"{OUT}/tiff/smooth_raw.tif")
    for name in ("tiled.tif", "planar.tif", "ycbcr_jpeg.tif"):
        refs[name] = np.asarray(Image.open(f"{OUT}/tiff/{name}").convert("RGB")).copy()
# 16-bit gray: Pillow's "I;16" -> RGB clips at 255; rtune refuses it (a named error) rather than guess.
Image.fromarray((np.arange(h * w, dtype=np.uint16).reshape(h, w) * 97)).save(f"{OUT}/tiff/gray16.tif")
data = open(f"{OUT}/tiff/rgb_lzw.tif", "rb").read()
open(f"{OUT}/tiff/truncated.tif", "wb").write(data[: len(data) // 2])

save_file(refs, f"{OUT}/tiff_refs.safetensors",
          metadata={"pillow": PIL.__version__, "libtiff": str(features.version("libtiff"))})
print("wrote", sorted(refs), "pillow", PIL.__version__, "libtiff", features.version("libtiff"))
