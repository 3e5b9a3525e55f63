"""CMYK JPEGs with chroma-style subsampling, as Pillow writes them, and the RGB Pillow decodes (issue 21).

Pillow's subsampling=1 (4:2:2) and 2 (4:2:0) sample the first component (C) at 2x1 / 2x2 and the
others at 1x1; TurboJPEG 2.x cannot name that sampling, and rtune used to refuse such files.
Run: python3 tests/gen/make_cmyk_fixtures.py tests/fixtures/data   (needs pillow, numpy, safetensors)
Writes OUT/cmyk/*.jpg and OUT/cmyk_refs.safetensors (Pillow's version in its metadata).
"""
import os, sys
import numpy as np
import PIL
from PIL import Image
from safetensors.numpy import save_file

OUT = sys.argv[1]
os.makedirs(f"{OUT}/cmyk", exist_ok=True)
rng = np.random.default_rng(21)
h, w = 29, 37  # odd: partial MCUs at the right and bottom edges
yy, xx = np.mgrid[0:h, 0:w]
smooth = np.dstack([xx * 6, yy * 8, (xx + yy) * 4, 255 - xx * 5]).clip(0, 255).astype(np.uint8)
noise = rng.integers(0, 256, (h, w, 4), dtype=np.uint8)
image = Image.fromarray(np.where(xx[..., None] < w // 2, smooth, noise), "CMYK")
refs = {}
for name, subsampling in {"cmyk444.jpg": 0, "cmyk422.jpg": 1, "cmyk420.jpg": 2}.items():
    path = f"{OUT}/cmyk/{name}"
    image.save(path, quality=90, subsampling=subsampling)
    decoded = Image.open(path)
    # layer: (component id, horizontal, vertical sampling, quantisation table) per component
    assert decoded.mode == "CMYK" and decoded.layer[0][1:3] == ((1, 1), (2, 1), (2, 2))[subsampling]
    assert all(c[1:3] == (1, 1) for c in decoded.layer[1:])
    refs[name] = np.asarray(decoded.convert("RGB")).copy()
save_file(refs, f"{OUT}/cmyk_refs.safetensors", metadata={"pillow": PIL.__version__, "numpy": np.__version__})
print(f"wrote {len(refs)} files with Pillow {PIL.__version__}")
