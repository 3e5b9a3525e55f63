#!/usr/bin/env python3
"""Checks that Python's safetensors library reads the file rtune's writer produced.

tests/fixtures/rtune_written.safetensors is written by test_io_safetensors (run it with
RTUNE_WRITE_FIXTURES=1 to regenerate). CI has no Python, so this runs by hand:
    pip install safetensors numpy && python3 tests/gen/check_safetensors_python.py
Verified with safetensors 0.8.0, numpy 2.x. Exits non-zero on any mismatch.
"""
import json
import pathlib
import struct
import sys

import numpy as np
from safetensors import safe_open

path = pathlib.Path(__file__).resolve().parents[1] / "fixtures" / "rtune_written.safetensors"
raw = path.read_bytes()
expected = {
    "layer.weight": np.array([0.5 * i - 1 for i in range(6)], np.float32).reshape(2, 3),
    "steps": np.array([-1, 0, 1 << 40], np.int64),
    "half": np.array([1.0, -2.0, 0.333251953125], np.float16),
    "bytes": np.array([[0, 1], [254, 255]], np.uint8),
    "scalar": np.array(-0.125, np.float64),
    "empty": np.zeros((0, 2), np.float32),
}
ok = True
with safe_open(str(path), framework="numpy") as f:
    t = {k: f.get_tensor(k) for k in f.keys() if k != "brain"}  # numpy cannot hold bfloat16
    if sorted(f.keys()) != sorted(list(expected) + ["brain"]):
        print("MISMATCH keys", sorted(f.keys()))
        ok = False
for name, want in expected.items():
    got = t[name]
    if got.dtype != want.dtype or got.shape != want.shape or not np.array_equal(got, want):
        print(f"MISMATCH {name}: got {got.dtype} {got.shape} {got!r}, want {want.dtype} {want.shape}")
        ok = False
# numpy has no bfloat16: read its raw bits through the header instead.
n = struct.unpack("<Q", raw[:8])[0]
hdr = json.loads(raw[8:8 + n])
b0, b1 = hdr["brain"]["data_offsets"]
bits = np.frombuffer(raw[8 + n + b0:8 + n + b1], np.uint16)
if hdr["brain"]["dtype"] != "BF16" or list(bits) != [0x3F80, 0x4049]:
    print("MISMATCH brain", hdr["brain"], bits)
    ok = False
with safe_open(str(path), framework="numpy") as f:
    if f.metadata() != {"format": "pt", "producer": "rtune"}:
        print("MISMATCH metadata", f.metadata())
        ok = False
print("OK" if ok else "FAILED", path)
sys.exit(0 if ok else 1)
