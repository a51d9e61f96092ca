"""The tensor table of a GGUF file, read from its header alone.

Sizing a convert stage (every `reasonlab run --plan`) needs only each tensor's name and shape.
`gguf.GGUFReader` builds every metadata field as numpy views first, and a tokenizer's vocabulary
is an array of ~150k strings: 13 s for Qwen2.5's header on two CPU cores. This reader skips the
metadata values by their lengths (GGUF v2/v3, little-endian, as llama.cpp writes them) and returns
the tensor table. A layout it does not parse is an `UnknownLayout` (the caller may fall back to
`GGUFReader`); a cut-off or corrupt header is a ValueError.
"""

from __future__ import annotations

import mmap
import struct
from dataclasses import dataclass
from math import prod
from pathlib import Path

MAGIC = b"GGUF"
# GGUF metadata value types with a fixed size, in bytes (8: string, 9: array are variable)
FIXED = {0: 1, 1: 1, 2: 2, 3: 2, 4: 4, 5: 4, 6: 4, 7: 1, 10: 8, 11: 8, 12: 8}
STRING, ARRAY = 8, 9


class UnknownLayout(ValueError):
    """A header this reader does not parse (GGUF v1, big-endian): `GGUFReader` may."""


class _Cursor:
    def __init__(self, buf) -> None:
        self.buf, self.pos = buf, 0

    def u32(self) -> int:
        (v,) = struct.unpack_from("<I", self.buf, self.pos)
        self.pos += 4
        return v

    def u64(self) -> int:
        (v,) = struct.unpack_from("<Q", self.buf, self.pos)
        self.pos += 8
        return v

    def string(self) -> str:
        n = self.u64()
        if self.pos + n > len(self.buf):
            raise ValueError("a string runs past the end of the file")
        self.pos += n
        return bytes(self.buf[self.pos - n : self.pos]).decode("utf-8", errors="replace")

    def skip_value(self, kind: int) -> None:
        if kind in FIXED:
            self.pos += FIXED[kind]
        elif kind == STRING:
            n = self.u64()  # read first: `pos += u64()` would add to the position before the read
            self.pos += n
        elif kind == ARRAY:
            item, count = self.u32(), self.u64()
            if item in FIXED:
                self.pos += FIXED[item] * count
            else:  # strings (or nested arrays): each carries its own length
                for _ in range(count):
                    self.skip_value(item)
        else:
            raise ValueError(f"unknown GGUF value type {kind}")
        if self.pos > len(self.buf):
            raise ValueError("a metadata value runs past the end of the file")


@dataclass(frozen=True)
class TensorEntry:
    elements: int
    ggml_type: int  # gguf.GGMLQuantizationType's value
    start: int  # absolute byte offset of the tensor's data in the file


def tensor_elements(path: str | Path) -> dict[str, int]:
    """Each tensor's name → its number of elements, from the header of the GGUF file at `path`.

    >>> import tempfile, os
    >>> head = b"GGUF" + struct.pack("<IQQ", 3, 1, 1)
    >>> kv = struct.pack("<Q", 3) + b"tok" + struct.pack("<IIQ", 9, 8, 2)  # an array of 2 strings
    >>> kv += struct.pack("<Q", 1) + b"a" + struct.pack("<Q", 2) + b"bc"
    >>> info = struct.pack("<Q", 1) + b"w" + struct.pack("<I", 2) + struct.pack("<QQ", 3, 5)
    >>> info += struct.pack("<IQ", 0, 0)
    >>> with tempfile.NamedTemporaryFile(suffix=".gguf", delete=False) as f:
    ...     _ = f.write(head + kv + info)
    >>> tensor_elements(f.name), tensor_table(f.name)["w"].start  # a 111-byte header, data at 128
    ({'w': 15}, 128)
    >>> os.unlink(f.name)
    """
    return {name: entry.elements for name, entry in tensor_table(path).items()}


def tensor_table(path: str | Path) -> dict[str, TensorEntry]:
    """Each tensor's name → its size, quantization type and where its data starts in the file."""
    try:
        return _read(path)
    except struct.error as e:  # a read past the end: a truncated or corrupt header
        raise ValueError(f"{path}: truncated GGUF header ({e})") from None
    except ValueError as e:  # UnknownLayout stays one
        raise type(e)(f"{path}: {e}") from None


def _read(path: str | Path) -> dict[str, TensorEntry]:
    with open(path, "rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as buf:
        if buf[:4] != MAGIC:
            raise ValueError("not a GGUF file")
        cur = _Cursor(buf)
        cur.pos = 4
        if cur.u32() not in (2, 3):
            raise UnknownLayout("a GGUF version this reader does not know (or big-endian)")
        n_tensors, n_kv = cur.u64(), cur.u64()
        alignment = 32  # GGUF's default; `general.alignment` (a u32) overrides it
        for _ in range(n_kv):
            key, kind = cur.string(), cur.u32()
            if key == "general.alignment" and kind == 4:
                alignment = cur.u32()
                if alignment <= 0 or alignment & (alignment - 1):  # GGUF requires a power of two
                    raise ValueError(f"general.alignment {alignment} is not a power of two")
            else:
                cur.skip_value(kind)
        infos = []
        for _ in range(n_tensors):
            name = cur.string()
            dims = [cur.u64() for _ in range(cur.u32())]
            infos.append((name, prod(dims), cur.u32(), cur.u64()))
        data = -(-cur.pos // alignment) * alignment  # the data section starts at the next multiple
        return {name: TensorEntry(n, kind, data + offset) for name, n, kind, offset in infos}
