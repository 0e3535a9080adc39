#!/usr/bin/env python3
"""Regenerate the G.711 mu-law oracle vectors from CPython's `audioop` (<= 3.12).

audioop implements the ITU-T G.711 reference (Sun's g711.c). We store its answers
for every possible input so the Rust codec is checked bit for bit:
  ulaw_encode_all.bin : 65536 bytes, the mu-law byte for each i16 from -32768 to 32767
  ulaw_decode_all.bin : 256 little-endian i16, the linear value for each mu-law byte
"""
import audioop
import pathlib
import struct
import sys

out = pathlib.Path(sys.argv[1] if len(sys.argv) > 1 else "shared/tests/fixtures/g711")
out.mkdir(parents=True, exist_ok=True)
every_sample = struct.pack("<65536h", *range(-32768, 32768))
(out / "ulaw_encode_all.bin").write_bytes(audioop.lin2ulaw(every_sample, 2))
(out / "ulaw_decode_all.bin").write_bytes(audioop.ulaw2lin(bytes(range(256)), 2))
print(f"wrote vectors to {out}")
