"""Synthetic ImageFolder of JPEGs for the loader benchmarks (bench_loader, bench/pytorch_loader.py).

Each image is 500x375 (ImageNet's typical size), JPEG quality 90, 4:2:0 (PIL's default), with
natural-ish content so that file sizes and decode cost are realistic: a random two-colour gradient,
a few dozen filled shapes, a soft blur and per-pixel noise (flat synthetic images compress to a few
KB and decode unrealistically fast). Images are spread round-robin over class folders. Seeded: the
same --seed gives byte-identical files for the same Pillow/numpy versions.

Usage: python3 bench/make_jpeg_folder.py OUT_DIR [--images 10000] [--classes 10] [--seed 0]
                                          [--width 500] [--height 375] [--quality 90] [--jobs 1]
"""
import argparse
import os
import sys
from multiprocessing import Pool

import numpy as np
from PIL import Image, ImageDraw, ImageFilter


def make_image(index, seed, width, height):
    rng = np.random.default_rng([seed, index])
    # Gradient between two random colours along a random direction.
    c0, c1 = rng.integers(0, 256, 3), rng.integers(0, 256, 3)
    angle = rng.uniform(0, 2 * np.pi)
    yy, xx = np.mgrid[0:height, 0:width].astype(np.float32)
    t = (xx * np.cos(angle) + yy * np.sin(angle))
    t = (t - t.min()) / max(float(t.max() - t.min()), 1.0)
    base = c0[None, None, :] * (1 - t[..., None]) + c1[None, None, :] * t[..., None]
    img = Image.fromarray(base.astype(np.uint8), "RGB")
    draw = ImageDraw.Draw(img)
    for _ in range(int(rng.integers(15, 40))):
        x0, y0 = int(rng.integers(-50, width)), int(rng.integers(-50, height))
        x1, y1 = x0 + int(rng.integers(10, 200)), y0 + int(rng.integers(10, 200))
        colour = tuple(int(v) for v in rng.integers(0, 256, 3))
        kind = int(rng.integers(0, 3))
        if kind == 0:
            draw.ellipse([x0, y0, x1, y1], fill=colour)
        elif kind == 1:
            draw.rectangle([x0, y0, x1, y1], fill=colour)
        else:
            pts = [(int(rng.integers(x0, x1)), int(rng.integers(y0, y1))) for _ in range(3)]
            draw.polygon(pts, fill=colour)
    img = img.filter(ImageFilter.GaussianBlur(radius=float(rng.uniform(0.5, 2.0))))
    arr = np.asarray(img).astype(np.int16)
    arr += rng.normal(0, float(rng.uniform(6, 16)), arr.shape).astype(np.int16)  # sensor-like noise
    return Image.fromarray(np.clip(arr, 0, 255).astype(np.uint8), "RGB")


def write_one(args):
    index, out, classes, seed, width, height, quality = args
    path = os.path.join(out, f"class_{index % classes:03d}", f"img_{index:06d}.jpg")
    make_image(index, seed, width, height).save(path, "JPEG", quality=quality)
    return os.path.getsize(path)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out")
    ap.add_argument("--images", type=int, default=10000)
    ap.add_argument("--classes", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--width", type=int, default=500)
    ap.add_argument("--height", type=int, default=375)
    ap.add_argument("--quality", type=int, default=90)
    ap.add_argument("--jobs", type=int, default=1)
    a = ap.parse_args()
    if a.images < 1 or a.classes < 1:
        sys.exit("make_jpeg_folder: --images and --classes must be >= 1")
    for c in range(min(a.classes, a.images)):
        os.makedirs(os.path.join(a.out, f"class_{c:03d}"), exist_ok=True)
    work = [(i, a.out, a.classes, a.seed, a.width, a.height, a.quality) for i in range(a.images)]
    if a.jobs > 1:
        with Pool(a.jobs) as p:
            sizes = p.map(write_one, work, chunksize=32)
    else:
        sizes = [write_one(w) for w in work]
    print(f"make_jpeg_folder: {a.images} images {a.width}x{a.height} q{a.quality} in {min(a.classes, a.images)} "
          f"classes under {a.out}; mean file {np.mean(sizes) / 1024:.1f} KiB, total {np.sum(sizes) / 2**20:.1f} MiB")


if __name__ == "__main__":
    main()
