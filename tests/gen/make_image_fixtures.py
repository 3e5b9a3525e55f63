"""Image decode + transform references for rtune's io/image and io/transforms tests, from Pillow alone.

torchvision's transforms on PIL images are thin wrappers over Pillow calls, so this script calls Pillow
exactly as torchvision 0.26's transforms/_functional_pil.py does (noted per case) and saves the results.
Run: python3 tests/gen/make_image_fixtures.py tests/fixtures/data   (needs pillow, numpy, safetensors)
Writes small files in several formats under OUT/decode/ and OUT/image_refs.safetensors.
"""
import io, os, sys
import numpy as np
import PIL
from PIL import Image, ImageEnhance, ImageOps
from safetensors.numpy import save_file

OUT = sys.argv[1]
os.makedirs(f"{OUT}/decode", exist_ok=True)
rng = np.random.default_rng(1234)
refs = {}


def rgb(im):
    return np.asarray(im.convert("RGB")).copy()


# ---------- decode: files in many modes and the RGB PIL makes of them ----------
h, w = 17, 23
base = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
alpha = rng.integers(0, 256, (h, w), dtype=np.uint8)
gray = rng.integers(0, 256, (h, w), dtype=np.uint8)
rgb_im = Image.fromarray(base, "RGB")
rgba_im = Image.fromarray(np.dstack([base, alpha]), "RGBA")
gray_im = Image.fromarray(gray, "L")
la_im = Image.fromarray(np.dstack([gray, alpha]), "LA")
pal_im = rgb_im.quantize(colors=16)
pal_trns = pal_im.copy()
pal_trns.info["transparency"] = 3
smooth = np.stack(np.meshgrid(np.arange(48) * 5, np.arange(64) * 3, indexing="xy"), -1)  # 64x48
smooth = np.dstack([smooth[..., 0], smooth[..., 1], (smooth[..., 0] + smooth[..., 1]) // 2]).astype(np.uint8)
smooth_im = Image.fromarray(np.ascontiguousarray(smooth[:, :, :3]), "RGB")
cmyk_im = Image.fromarray(np.dstack([base, gray]), "CMYK")

files = {
    "rgb.png": (rgb_im, {}), "rgba.png": (rgba_im, {}), "gray.png": (gray_im, {}), "la.png": (la_im, {}),
    "palette.png": (pal_im, {}), "palette_trns.png": (pal_trns, {"transparency": 3}),
    "rgb.bmp": (rgb_im, {}), "gray.bmp": (gray_im, {}), "palette.gif": (pal_im, {}),
    "rgb.tga": (rgb_im, {}), "rgba.tga": (rgba_im, {}),
    "rgb420.jpg": (rgb_im, {"quality": 85}), "rgb444.jpg": (rgb_im, {"quality": 95, "subsampling": 0}),
    "gray.jpg": (gray_im, {"quality": 90}), "cmyk.jpg": (cmyk_im, {"quality": 90}),
    "progressive.jpg": (rgb_im, {"quality": 80, "progressive": True}),
    "smooth.jpg": (smooth_im, {"quality": 90}),
}
for name, (im, kw) in files.items():
    im.save(f"{OUT}/decode/{name}", **kw)
    refs[f"decode.{name}"] = rgb(Image.open(f"{OUT}/decode/{name}"))
# PIL's draft mode = libjpeg DCT scaling: what a 1/2 and 1/4 scaled decode must give.
for denom in (2, 4, 8):
    im = Image.open(f"{OUT}/decode/smooth.jpg")
    im.draft("RGB", (48 // denom, 64 // denom))
    refs[f"decode_scaled.smooth.jpg.{denom}"] = rgb(im)
data = open(f"{OUT}/decode/rgb420.jpg", "rb").read()
open(f"{OUT}/decode/truncated.jpg", "wb").write(data[: len(data) // 2])
data = open(f"{OUT}/decode/rgb.png", "rb").read()
open(f"{OUT}/decode/truncated.png", "wb").write(data[: len(data) * 2 // 3])
open(f"{OUT}/decode/corrupt.png", "wb").write(data[:40] + bytes(200) + data[240:])
data = open(f"{OUT}/decode/rgb.bmp", "rb").read()
open(f"{OUT}/decode/truncated.bmp", "wb").write(data[: len(data) // 2])
open(f"{OUT}/decode/empty.jpg", "wb").write(b"")
open(f"{OUT}/decode/notes.txt", "wb").write(b"this is not an image\n")
open(f"{OUT}/decode/garbage.jpg", "wb").write(b"\xff\xd8\xff" + bytes(rng.integers(0, 256, 300, dtype=np.uint8)))

# ---------- transforms on a noisy image (noise exercises every rounding) ----------
h, w = 37, 53
noise = rng.integers(0, 256, (h, w, 3), dtype=np.uint8)
noise[5:20, 10:30] = [250, 30, 30]  # a flat region: saturated colours, flat hue
src = Image.fromarray(noise, "RGB")
refs["noise"] = noise
T = {}
# F.resize(img, [h, w]) -> img.resize((w, h), BILINEAR/NEAREST)
for (oh, ow) in [(20, 29), (80, 100), (37, 20), (50, 53), (9, 131), (1, 1)]:
    T[f"resize_{oh}x{ow}"] = src.resize((ow, oh), Image.BILINEAR)
for (oh, ow) in [(100, 70), (15, 22), (37, 99)]:
    T[f"resize_{oh}x{ow}_nearest"] = src.resize((ow, oh), Image.NEAREST)
# F.rotate(img, angle, interp, fill) -> img.rotate(angle, interp, False, None, fillcolor=fill)
for angle, interp, fill in [(30, "nearest", 0), (-45, "bilinear", 0), (90, "nearest", 0), (180, "bilinear", 0),
                            (12.5, "bilinear", 128), (-100.25, "nearest", 7), (270, "bilinear", 0), (359.9, "bilinear", 0)]:
    mode = Image.NEAREST if interp == "nearest" else Image.BILINEAR
    T[f"rotate_{angle}_{interp}_fill{fill}"] = src.rotate(angle, mode, False, None, fillcolor=(fill, fill, fill))
sq = src.crop((0, 0, 37, 37))
T["square_rotate_90_nearest"] = sq.rotate(90, Image.NEAREST, False, None, fillcolor=(0, 0, 0))
T["square_rotate_-90_bilinear"] = sq.rotate(-90, Image.BILINEAR, False, None, fillcolor=(0, 0, 0))
# F.adjust_* -> ImageEnhance.*(img).enhance(f); F.adjust_hue -> HSV round trip
for f in (0.0, 0.6, 1.7):
    T[f"brightness_{f}"] = ImageEnhance.Brightness(src).enhance(f)
for f in (0.0, 0.35, 1.4):
    T[f"contrast_{f}"] = ImageEnhance.Contrast(src).enhance(f)
for f in (0.0, 0.3, 2.0):
    T[f"saturation_{f}"] = ImageEnhance.Color(src).enhance(f)
for f in (-0.5, -0.3, 0.05, 0.45):
    hh, ss, vv = src.convert("HSV").split()
    nh = np.array(hh, dtype=np.uint8)
    with np.errstate(over="ignore"):
        nh += np.array(f * 255).astype(np.uint8)
    T[f"hue_{f}"] = Image.merge("HSV", (Image.fromarray(nh, "L"), ss, vv)).convert("RGB")
T["grayscale"] = Image.fromarray(np.dstack([np.array(src.convert("L"))] * 3), "RGB")
# F.pad: constant -> ImageOps.expand(fill); others -> np.pad
T["pad_3_constant_fill7"] = ImageOps.expand(src, border=(3, 1, 4, 2), fill=(7, 7, 7))
for mode, p in [("reflect", (5, 2, 1, 40)), ("symmetric", (3, 60, 2, 1)), ("edge", (2, 3, 4, 5))]:
    l, t, r, b = p
    T[f"pad_{mode}"] = Image.fromarray(np.pad(noise, ((t, b), (l, r), (0, 0)), mode))
# F.center_crop: zero pad when larger, then crop at round((H-h)/2) (banker's rounding)
def center_crop(img, ch, cw):
    W, H = img.size
    if cw > W or ch > H:
        pl = [(cw - W) // 2 if cw > W else 0, (ch - H) // 2 if ch > H else 0,
              (cw - W + 1) // 2 if cw > W else 0, (ch - H + 1) // 2 if ch > H else 0]
        img = ImageOps.expand(img, border=tuple(pl), fill=0)
        W, H = img.size
        if cw == W and ch == H:
            return img
    top, left = int(round((H - ch) / 2.0)), int(round((W - cw) / 2.0))
    return img.crop((left, top, left + cw, top + ch))
T["center_crop_20x20"] = center_crop(src, 20, 20)
T["center_crop_40x60"] = center_crop(src, 40, 60)
T["center_crop_36x54"] = center_crop(src, 36, 54)
T["crop_outside"] = src.crop((-3, 30, -3 + 10, 30 + 12))
for k, im in T.items():
    refs[f"t.{k}"] = rgb(im)

refs = {k: np.ascontiguousarray(v) for k, v in refs.items()}
save_file(refs, f"{OUT}/image_refs.safetensors", metadata={"pillow": PIL.__version__, "numpy": np.__version__})
print(f"wrote {len(refs)} references with Pillow {PIL.__version__}")
