"""pyengine.save / pyengine.load: state dicts in the safetensors format (and .npz on load).

The safetensors layout, written and read here without any third-party code:

    8 bytes   N, the header length (unsigned little-endian 64-bit)
    N bytes   a UTF-8 JSON object {name: {"dtype": "F32", "shape": [..], "data_offsets": [b, e]},
              "__metadata__": {str: str}} (padded with spaces so that the data starts 8-aligned)
    rest      the tensors' bytes, little-endian, C order; offsets are relative to the start of
              this section, and the tensors cover it exactly (no overlaps, no holes)

Loading never unpickles and never runs code. Everything in the header is checked against the
file size before any tensor memory is allocated: header length, JSON structure, known dtypes,
shape x itemsize == byte length, offsets within the data section, no overlap, full coverage.
A malformed file raises ValueError starting with "[load] ".
"""

from __future__ import annotations

import io
import json
import math
import os
import zipfile
from collections import OrderedDict
from typing import IO, Dict, Mapping, Optional, Union

import numpy as np

from .tensor import Tensor, _is_cupy, _move, _parse_device

__all__ = ["save", "load"]

# safetensors dtype names <-> NumPy (little-endian). BF16 has no NumPy dtype: refused on load.
_DTYPES: Dict[str, np.dtype] = {
    "BOOL": np.dtype("?"),
    "U8": np.dtype("u1"),
    "I8": np.dtype("i1"),
    "U16": np.dtype("<u2"),
    "I16": np.dtype("<i2"),
    "F16": np.dtype("<f2"),
    "U32": np.dtype("<u4"),
    "I32": np.dtype("<i4"),
    "F32": np.dtype("<f4"),
    "U64": np.dtype("<u8"),
    "I64": np.dtype("<i8"),
    "F64": np.dtype("<f8"),
}
_NAMES = {(dt.kind, dt.itemsize): name for name, dt in _DTYPES.items()}
_KNOWN_BUT_UNSUPPORTED = {"BF16", "F8_E4M3", "F8_E5M2", "C64"}

MAX_HEADER = 100_000_000  # bytes, the limit of the reference implementation

PathLike = Union[str, "os.PathLike[str]"]


# ----------------------------------------------------------------------------- save


def _to_host(name: str, value) -> np.ndarray:
    if isinstance(value, Tensor):
        arr = value.data
    elif isinstance(value, np.ndarray) or _is_cupy(value):
        arr = value
    else:
        raise TypeError(
            f"[save] value for {name!r} must be a Tensor or an array, got {type(value).__name__}"
        )
    arr = _move(arr, "cpu")
    if (arr.dtype.kind, arr.dtype.itemsize) not in _NAMES:
        raise TypeError(
            f"[save] value for {name!r} has dtype {arr.dtype}, which safetensors cannot store"
        )
    if not arr.flags.c_contiguous:  # (np.ascontiguousarray would turn 0-d into 1-d)
        arr = arr.copy(order="C")
    return arr.astype(arr.dtype.newbyteorder("<"), copy=False)


def save(
    obj: Mapping[str, Tensor],
    f: Union[PathLike, IO[bytes]],
    metadata: Optional[Mapping[str, str]] = None,
) -> None:
    """Write a flat mapping name -> Tensor (or array), e.g. ``model.state_dict()``, to f in the
    safetensors format. ``metadata`` (str -> str) goes to the header's ``__metadata__``."""
    if hasattr(obj, "state_dict") and not isinstance(obj, Mapping):
        raise TypeError("[save] expects a mapping of tensors; pass model.state_dict()")
    if not isinstance(obj, Mapping):
        raise TypeError(f"[save] expects a mapping name -> Tensor, got {type(obj).__name__}")
    arrays = []
    for name, value in obj.items():
        if not isinstance(name, str):
            raise TypeError(f"[save] keys must be str, got {type(name).__name__}")
        if name == "__metadata__":
            raise ValueError("[save] the key '__metadata__' is reserved by the format")
        if isinstance(value, Mapping):
            raise TypeError(
                f"[save] value for {name!r} is a nested mapping; only flat name -> tensor "
                "mappings can be saved (safetensors)"
            )
        arrays.append((name, _to_host(name, value)))
    # Largest items first keeps every tensor aligned to its itemsize with no padding.
    arrays.sort(key=lambda kv: (-kv[1].dtype.itemsize, kv[0]))
    header: Dict[str, object] = {}
    if metadata is not None:
        if not all(isinstance(k, str) and isinstance(v, str) for k, v in metadata.items()):
            raise TypeError("[save] metadata must map str to str")
        header["__metadata__"] = dict(metadata)
    offset = 0
    for name, arr in arrays:
        header[name] = {
            "dtype": _NAMES[(arr.dtype.kind, arr.dtype.itemsize)],
            "shape": list(arr.shape),
            "data_offsets": [offset, offset + arr.nbytes],
        }
        offset += arr.nbytes
    hbytes = json.dumps(header, separators=(",", ":")).encode("utf-8")
    hbytes += b" " * (-(8 + len(hbytes)) % 8)

    def write(fh) -> None:
        fh.write(len(hbytes).to_bytes(8, "little"))
        fh.write(hbytes)
        for _, arr in arrays:
            fh.write(memoryview(arr.reshape(-1)).cast("B") if arr.size else b"")

    if hasattr(f, "write"):
        write(f)
        return
    path = os.fspath(f)
    tmp = f"{path}.tmp{os.getpid()}"
    try:
        with open(tmp, "wb") as fh:
            write(fh)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


# ----------------------------------------------------------------------------- load


def _fail(msg: str):
    raise ValueError(f"[load] {msg}")


def _parse_header(hbytes: bytes, data_len: int):
    """Validated (name, dtype, shape, begin, end) entries and the metadata."""
    try:
        header = json.loads(hbytes.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as e:
        _fail(f"the header is not valid UTF-8 JSON: {type(e).__name__}: {e}"[:300])
    if not isinstance(header, dict):
        _fail(f"the header must be a JSON object, got {type(header).__name__}")
    metadata = header.pop("__metadata__", None)
    if metadata is not None and not (
        isinstance(metadata, dict)
        and all(isinstance(k, str) and isinstance(v, str) for k, v in metadata.items())
    ):
        _fail("__metadata__ must be an object mapping str to str")
    entries = []
    for name, info in header.items():
        if not isinstance(info, dict) or set(info) != {"dtype", "shape", "data_offsets"}:
            _fail(f"entry {name!r} must have exactly the fields dtype, shape and data_offsets")
        dt, shape, offs = info["dtype"], info["shape"], info["data_offsets"]
        if not isinstance(dt, str) or dt not in _DTYPES:
            if dt in _KNOWN_BUT_UNSUPPORTED:
                _fail(
                    f"entry {name!r} has dtype {dt}, which pyengine cannot hold (no NumPy "
                    "dtype); convert it before saving"
                )
            _fail(f"entry {name!r} has an unknown dtype {dt!r}")
        if not isinstance(shape, list) or not all(
            isinstance(s, int) and not isinstance(s, bool) and s >= 0 for s in shape
        ):
            _fail(f"entry {name!r} has an invalid shape {shape!r:.100}")
        if len(shape) > 64:
            _fail(f"entry {name!r} has {len(shape)} dimensions (at most 64)")
        if not (
            isinstance(offs, list)
            and len(offs) == 2
            and all(isinstance(o, int) and not isinstance(o, bool) for o in offs)
        ):
            _fail(f"entry {name!r} has invalid data_offsets {offs!r:.100}")
        begin, end = offs
        if not 0 <= begin <= end <= data_len:
            _fail(
                f"entry {name!r} has data_offsets [{begin}, {end}] outside the data section "
                f"of {data_len} bytes"
            )
        nbytes = math.prod(shape) * _DTYPES[dt].itemsize  # Python ints: no overflow
        if nbytes != end - begin:
            _fail(
                f"entry {name!r}: shape {shape} x {_DTYPES[dt].itemsize} bytes = {nbytes} bytes "
                f"but data_offsets span {end - begin}"
            )
        entries.append((name, _DTYPES[dt], tuple(shape), begin, end))
    pos = 0
    for name, _, _, begin, end in sorted(entries, key=lambda e: (e[3], e[4])):
        if begin < pos:
            _fail(f"entry {name!r} overlaps the previous tensor (starts at {begin} < {pos})")
        if begin > pos:
            _fail(f"the data section has a hole at bytes [{pos}, {begin})")
        pos = end
    if pos != data_len:
        _fail(f"the tensors cover {pos} bytes but the data section has {data_len}")
    return entries, metadata


def _read_exact(fh, n: int, what: str) -> bytes:
    b = fh.read(n)
    if len(b) != n:
        _fail(f"file truncated while reading {what} ({len(b)} of {n} bytes)")
    return b


def _load_safetensors(fh, size: int):
    if size < 8:
        _fail(f"file too small to be safetensors ({size} bytes)")
    n = int.from_bytes(_read_exact(fh, 8, "the header length"), "little")
    if n > MAX_HEADER:
        _fail(f"header length {n} exceeds the limit of {MAX_HEADER} bytes")
    if n > size - 8:
        _fail(f"header length {n} exceeds the file size ({size} bytes)")
    hbytes = _read_exact(fh, n, "the header")
    data_len = size - 8 - n
    entries, metadata = _parse_header(hbytes, data_len)
    buf = bytearray(data_len)  # bounded by the file size, checked above
    if data_len and fh.readinto(buf) != data_len:
        _fail("file truncated while reading the data section")
    out = OrderedDict()
    for name, dt, shape, begin, end in sorted(entries, key=lambda e: e[3]):
        count = (end - begin) // dt.itemsize
        arr = np.frombuffer(buf, dtype=dt, count=count, offset=begin).reshape(shape)
        if not arr.flags.aligned or not dt.isnative:
            arr = arr.astype(dt.newbyteorder("="))
        out[name] = arr
    return out, metadata


def _load_npz(f) -> OrderedDict[str, np.ndarray]:
    try:
        with np.load(f, allow_pickle=False) as z:
            return OrderedDict((k, z[k]) for k in z.files)
    except (ValueError, zipfile.BadZipFile, OSError, EOFError) as e:
        raise ValueError(f"[load] could not read the .npz archive: {e}") from e


def load(f: Union[PathLike, IO[bytes]], map_location=None) -> OrderedDict[str, Tensor]:
    """Read a safetensors file (or a NumPy .npz archive) into an ordered dict of Tensors.

    ``map_location`` ("cpu" default, or "cuda") is the device of the returned tensors.
    """
    device = _parse_device(map_location) if map_location is not None else "cpu"
    if hasattr(f, "read"):
        data = f.read()
        fh: IO[bytes] = io.BytesIO(data)
        size = len(data)
    else:
        path = os.fspath(f)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"[load] no such file: {path!r}")
        size = os.path.getsize(path)
        fh = open(path, "rb")  # noqa: SIM115  (closed below)
    try:
        magic = fh.read(4)
        fh.seek(0)
        if magic == b"PK\x03\x04" or (magic == b"PK\x05\x06"):
            arrays = _load_npz(fh)
        else:
            arrays, _ = _load_safetensors(fh, size)
    finally:
        fh.close()
    return OrderedDict((k, Tensor(_move(a, device))) for k, a in arrays.items())


def load_metadata(f: Union[PathLike, IO[bytes]]) -> Optional[Dict[str, str]]:
    """The ``__metadata__`` of a safetensors file (None if absent); the header is validated."""
    if hasattr(f, "read"):
        data = f.read()
        fh: IO[bytes] = io.BytesIO(data)
        size = len(data)
    else:
        size = os.path.getsize(os.fspath(f))
        fh = open(os.fspath(f), "rb")  # noqa: SIM115
    try:
        if size < 8:
            _fail(f"file too small to be safetensors ({size} bytes)")
        n = int.from_bytes(_read_exact(fh, 8, "the header length"), "little")
        if n > MAX_HEADER or n > size - 8:
            _fail(f"header length {n} exceeds the file size or the limit")
        _, metadata = _parse_header(_read_exact(fh, n, "the header"), size - 8 - n)
        return metadata
    finally:
        fh.close()
