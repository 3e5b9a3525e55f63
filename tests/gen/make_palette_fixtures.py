"""Palette images whose pixels index past the palette (issue 21), and the RGB Pillow makes of them.

stb_image looked such indices up in uninitialised memory. Pillow pads a PNG's short palette with black;
rtune pads it the same way. Pillow's BMP reader gives black or, when the palette is a gray ramp, the
index as gray (and misreads 4-bit gray ramps); rtune refuses such a BMP as corrupt, so only the PNGs
and the in-range BMP get references.
Run: python3 tests/gen/make_palette_fixtures.py tests/fixtures/data   (needs pillow, numpy, safetensors)
Writes OUT/palette/*.png, *.bmp and OUT/palette_refs.safetensors (Pillow's version in its metadata).
"""
import os, struct, sys, zlib
import numpy as np
import PIL
from PIL import Image
from safetensors.numpy import save_file

OUT = sys.argv[1]
os.makedirs(f"{OUT}/palette", exist_ok=True)


def chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def png(width, depth, palette, rows, trns=None):
    """A palette PNG written by hand: Pillow's writer never leaves an index past the palette."""
    per_byte = 8 // depth
    packed = []
    for r in rows:
        row = bytearray()
        for i in range(0, width, per_byte):
            v = 0
            for k in range(per_byte):
                v = (v << depth) | (r[i + k] if i + k < width else 0)
            row.append(v)
        packed.append(b"\0" + bytes(row))
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, len(rows), depth, 3, 0, 0, 0))
            + chunk(b"PLTE", bytes(c for rgb in palette for c in rgb))
            + (chunk(b"tRNS", trns) if trns else b"")
            + chunk(b"IDAT", zlib.compress(b"".join(packed))) + chunk(b"IEND", b""))


def bmp(width, bits, palette, rows):
    """A bottom-up BITMAPINFOHEADER BMP whose colour count is the palette's length."""
    stride = (width * bits + 31) // 32 * 4
    data = b""
    for r in rows[::-1]:
        v, n, row = 0, 0, bytearray()
        for x in r:
            v, n = (v << bits) | x, n + bits
            if n == 8:
                row.append(v)
                v, n = 0, 0
        if n:
            row.append(v << (8 - n))
        data += bytes(row).ljust(stride, b"\0")
    pal = b"".join(bytes((b, g, r, 0)) for r, g, b in palette)
    offset = 14 + 40 + len(pal)
    return (b"BM" + struct.pack("<IHHI", offset + len(data), 0, 0, offset)
            + struct.pack("<IiiHHIIiiII", 40, width, len(rows), 1, bits, 0, len(data), 2835, 2835, len(palette), 0)
            + pal + data)


colors = [(200, 30, 40), (10, 220, 90), (60, 70, 250), (255, 255, 0), (0, 128, 128)]
every_index = [list(range(16 * y, 16 * y + 16)) for y in range(16)]  # 16x16: indices 0..255
files = {
    "short_8bit.png": png(16, 8, colors, every_index),
    "short_4bit.png": png(16, 4, colors[:3], [[(x + y) % 16 for x in range(16)] for y in range(3)]),
    "short_1bit.png": png(9, 1, colors[:1], [[(x + y) % 2 for x in range(9)] for y in range(2)]),
    # tRNS longer than PLTE: Pillow accepts it (the alpha is dropped by convert("RGB")).
    "short_trns.png": png(6, 8, colors[:2], [[0, 1, 2, 3, 4, 5]], trns=b"\x00\x80\x40\x20"),
    "in_range_8bit.bmp": bmp(5, 8, colors[:3], [[0, 1, 2, 1, 0], [2, 2, 1, 0, 0]]),
    "short_8bit.bmp": bmp(6, 8, colors[:2], [[0, 1, 0, 1, 0, 1], [0, 1, 200, 1, 0, 1]]),
    "short_4bit.bmp": bmp(5, 4, colors[:3], [[0, 1, 2, 15, 0]]),
    "short_1bit.bmp": bmp(9, 1, colors[:1], [[0, 0, 0, 0, 0, 0, 0, 0, 1]]),
}
refs = {}
for name, data in files.items():
    open(f"{OUT}/palette/{name}", "wb").write(data)
    im = Image.open(f"{OUT}/palette/{name}")
    if name.endswith(".png") or name.startswith("in_range"):
        refs[name] = np.asarray(im.convert("RGB")).copy()
# What Pillow does with the indices past a PNG's palette: black.
assert (refs["short_8bit.png"].reshape(-1, 3)[len(colors):] == 0).all()
save_file(refs, f"{OUT}/palette_refs.safetensors", metadata={"pillow": PIL.__version__, "numpy": np.__version__})
print(f"wrote {len(files)} files, {len(refs)} references with Pillow {PIL.__version__}")
