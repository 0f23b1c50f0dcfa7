"""pyengine.save / pyengine.load: bit-exact round trips in the safetensors format, .npz input,
and malformed, truncated or hostile files rejected with clear errors before any large
allocation."""

from __future__ import annotations

import importlib.util
import io
import json
import struct
import tracemalloc

import numpy as np
import pytest

import pyengine as pe
from pyengine import nn
from pyengine.serialization import load_metadata


def _all_dtypes():
    rng = np.random.default_rng(0)
    return {
        "f32": rng.normal(size=(3, 5)).astype(np.float32),
        "f64": rng.normal(size=(7,)),
        "f16": rng.normal(size=(2, 2)).astype(np.float16),
        "i64": rng.integers(-(2**62), 2**62, (4,)),
        "i32": rng.integers(-(2**31), 2**31 - 1, (2, 3), dtype=np.int32),
        "i16": rng.integers(-100, 100, (5,), dtype=np.int16),
        "u8": rng.integers(0, 255, (3, 3), dtype=np.uint8),
        "i8": rng.integers(-100, 100, (1,), dtype=np.int8),
        "u16": rng.integers(0, 60000, (2,), dtype=np.uint16),
        "u32": rng.integers(0, 2**32 - 1, (2,), dtype=np.uint32),
        "u64": rng.integers(0, 2**63, (2,), dtype=np.uint64),
        "bool": rng.integers(0, 2, (6,)).astype(bool),
        "scalar": np.asarray(3.5, np.float32),
        "empty": np.zeros((0, 4), np.float32),
        "special": np.array([np.nan, np.inf, -np.inf, -0.0, 1e-45], np.float32),
    }


def _bits(a):
    return a.reshape(-1).view(np.uint8) if a.size else a


def test_round_trip_bit_for_bit(tmp_path):
    arrays = _all_dtypes()
    path = tmp_path / "x.safetensors"
    pe.save({k: pe.tensor(v) for k, v in arrays.items()}, path, metadata={"format": "pt"})
    out = pe.load(path)
    assert set(out) == set(arrays)
    for k, v in arrays.items():
        got = out[k]
        assert isinstance(got, pe.Tensor) and got.dtype == v.dtype and got.shape == v.shape, k
        np.testing.assert_array_equal(_bits(got.numpy()), _bits(v), err_msg=k)
        assert got.numpy().flags.writeable and got.numpy().flags.aligned
    assert load_metadata(path) == {"format": "pt"}


def test_layout_is_safetensors(tmp_path):
    """The bytes follow the spec: u64 header length, JSON header, 8-aligned packed data."""
    path = tmp_path / "y.safetensors"
    a = np.arange(6, dtype=np.float32).reshape(2, 3)
    b = np.array([1, 2], np.int64)
    pe.save({"a": a, "b": b}, path)
    raw = path.read_bytes()
    (n,) = struct.unpack("<Q", raw[:8])
    assert (8 + n) % 8 == 0
    header = json.loads(raw[8 : 8 + n])
    assert header["a"] == {"dtype": "F32", "shape": [2, 3], "data_offsets": [16, 40]}
    assert header["b"] == {"dtype": "I64", "shape": [2], "data_offsets": [0, 16]}
    data = raw[8 + n :]
    assert len(data) == 40
    np.testing.assert_array_equal(np.frombuffer(data[16:40], "<f4").reshape(2, 3), a)
    np.testing.assert_array_equal(np.frombuffer(data[:16], "<i8"), b)


def test_model_state_dict_round_trip(tmp_path):
    pe.manual_seed(0)
    net = nn.Sequential(nn.Linear(5, 8), nn.Linear(8, 2))
    net.register_buffer("steps", pe.tensor([7]))
    path = tmp_path / "model.safetensors"
    pe.save(net.state_dict(), path)
    pe.manual_seed(1)
    other = nn.Sequential(nn.Linear(5, 8), nn.Linear(8, 2))
    other.register_buffer("steps", pe.tensor([0]))
    other.load_state_dict(pe.load(path))
    x = pe.randn(4, 5)
    np.testing.assert_array_equal(net(x).detach().numpy(), other(x).detach().numpy())
    assert other.steps.item() == 7


def test_non_contiguous_and_file_objects():
    x = pe.randn(4, 6).mT  # a transposed view
    buf = io.BytesIO()
    pe.save({"x": x}, buf)
    buf.seek(0)
    out = pe.load(buf)
    np.testing.assert_array_equal(out["x"].numpy(), x.numpy())


def test_npz_is_accepted(tmp_path):
    path = tmp_path / "w.npz"
    arrays = {"w": np.arange(12.0).reshape(3, 4), "i": np.array([1, 2, 3])}
    np.savez(path, **arrays)
    out = pe.load(path)
    for k, v in arrays.items():
        np.testing.assert_array_equal(out[k].numpy(), v)
    np.savez(tmp_path / "obj.npz", o=np.array([{"a": 1}], dtype=object))
    with pytest.raises(ValueError, match=r"\[load\] could not read the .npz"):
        pe.load(tmp_path / "obj.npz")  # object arrays need pickle: refused


def test_save_errors(tmp_path):
    p = tmp_path / "e.safetensors"
    with pytest.raises(TypeError, match=r"\[save\] expects a mapping of tensors; pass model"):
        pe.save(nn.Linear(2, 2), p)
    with pytest.raises(TypeError, match=r"\[save\] value for 'a' is a nested mapping"):
        pe.save({"a": {"b": pe.zeros(1)}}, p)
    with pytest.raises(TypeError, match=r"\[save\] value for 'a' must be a Tensor"):
        pe.save({"a": [1, 2]}, p)
    with pytest.raises(TypeError, match=r"\[save\] keys must be str"):
        pe.save({1: pe.zeros(1)}, p)
    with pytest.raises(ValueError, match="reserved"):
        pe.save({"__metadata__": pe.zeros(1)}, p)
    with pytest.raises(TypeError, match="cannot store"):
        pe.save({"c": np.zeros(2, np.complex64)}, p)
    assert not p.exists()  # nothing half-written


# ----------------------------------------------------------------------------- hostile files


def _file(header, data=b"", n=None, pad=True):
    h = header if isinstance(header, bytes) else json.dumps(header).encode()
    if pad:
        h += b" " * (-(8 + len(h)) % 8)
    return struct.pack("<Q", len(h) if n is None else n) + h + data


GOOD = {"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]}}

BAD = [
    ("too small", b"\x01\x02", "too small"),
    ("header longer than file", _file(GOOD, b"\0" * 8, n=10**6), "exceeds the file size"),
    ("header beyond limit", _file(GOOD, b"\0" * 8, n=2**62), "exceeds the limit"),
    ("header not json", _file(b"{not json", b""), "not valid UTF-8 JSON"),
    ("header not utf8", _file(b"\xff\xfe\xfd", b""), "not valid UTF-8 JSON"),
    ("header a list", _file([1, 2], b""), "must be a JSON object"),
    ("deep nesting", _file(b"[" * 100000 + b"]" * 100000, b""), "not valid UTF-8 JSON"),
    (
        "unknown dtype",
        _file({"a": {"dtype": "F128", "shape": [1], "data_offsets": [0, 16]}}, b"\0" * 16),
        "unknown dtype",
    ),
    (
        "bf16",
        _file({"a": {"dtype": "BF16", "shape": [1], "data_offsets": [0, 2]}}, b"\0" * 8),
        "BF16",
    ),
    (
        "missing field",
        _file({"a": {"dtype": "F32", "shape": [2]}}, b"\0" * 8),
        "exactly the fields",
    ),
    ("extra field", _file({"a": {**GOOD["a"], "x": 1}}, b"\0" * 8), "exactly the fields"),
    (
        "negative dim",
        _file({"a": {"dtype": "F32", "shape": [-2], "data_offsets": [0, 8]}}, b"\0" * 8),
        "invalid shape",
    ),
    (
        "float dim",
        _file({"a": {"dtype": "F32", "shape": [2.0], "data_offsets": [0, 8]}}, b"\0" * 8),
        "invalid shape",
    ),
    (
        "bool dim",
        _file({"a": {"dtype": "F32", "shape": [True], "data_offsets": [0, 4]}}, b"\0" * 8),
        "invalid shape",
    ),
    (
        "offsets out of bounds",
        _file({"a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 80]}}, b"\0" * 8),
        "outside",
    ),
    (
        "offsets reversed",
        _file({"a": {"dtype": "F32", "shape": [0], "data_offsets": [8, 0]}}, b"\0" * 8),
        "outside",
    ),
    (
        "shape vs bytes",
        _file({"a": {"dtype": "F32", "shape": [3], "data_offsets": [0, 8]}}, b"\0" * 8),
        "span 8",
    ),
    (
        "huge shape",
        _file({"a": {"dtype": "F64", "shape": [2**40, 2**40], "data_offsets": [0, 8]}}, b"\0" * 8),
        "span 8",
    ),
    (
        "overlap",
        _file(
            {
                "a": {"dtype": "F32", "shape": [2], "data_offsets": [0, 8]},
                "b": {"dtype": "F32", "shape": [2], "data_offsets": [4, 12]},
            },
            b"\0" * 12,
        ),
        "overlaps",
    ),
    (
        "hole",
        _file({"a": {"dtype": "F32", "shape": [1], "data_offsets": [4, 8]}}, b"\0" * 8),
        "hole",
    ),
    ("trailing bytes", _file(GOOD, b"\0" * 16), "cover 8 bytes"),
    ("bad metadata", _file({**GOOD, "__metadata__": {"k": 1}}, b"\0" * 8), "__metadata__"),
    (
        "offsets not ints",
        _file({"a": {"dtype": "F32", "shape": [2], "data_offsets": ["0", "8"]}}, b"\0" * 8),
        "data_offsets",
    ),
]


@pytest.mark.parametrize("raw, msg", [(r, m) for _, r, m in BAD], ids=[n for n, _, _ in BAD])
def test_hostile_files_rejected(tmp_path, raw, msg):
    path = tmp_path / "bad.safetensors"
    path.write_bytes(raw)
    tracemalloc.start()
    try:
        with pytest.raises(ValueError) as e:
            pe.load(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert str(e.value).startswith("[load] ") and msg in str(e.value), str(e.value)
    assert peak < 8 * len(raw) + (4 << 20)  # nothing sized by the header's claims


def test_truncated_files(tmp_path):
    good = io.BytesIO()
    pe.save({"a": pe.randn(10, 10), "b": pe.tensor([1, 2, 3])}, good)
    raw = good.getvalue()
    for cut in (0, 4, 8, 20, len(raw) // 2, len(raw) - 1):
        path = tmp_path / f"t{cut}.safetensors"
        path.write_bytes(raw[:cut])
        with pytest.raises(ValueError, match=r"^\[load\] "):
            pe.load(path)
    (tmp_path / "ok.safetensors").write_bytes(raw)
    assert set(pe.load(tmp_path / "ok.safetensors")) == {"a", "b"}


def test_random_corruption_never_crashes(tmp_path):
    good = io.BytesIO()
    pe.save({"w": pe.randn(8, 3), "b": pe.zeros(3)}, good)
    raw = bytearray(good.getvalue())
    rng = np.random.default_rng(0)
    path = tmp_path / "c.safetensors"
    for _ in range(200):
        bad = bytearray(raw)
        for i in rng.integers(0, len(bad), rng.integers(1, 4)):
            bad[i] = int(rng.integers(0, 256))
        path.write_bytes(bytes(bad))
        try:
            out = pe.load(path)
        except ValueError as e:
            assert str(e).startswith("[load] ")
        else:  # a corruption that leaves a valid file (data bytes, a key's letters)
            assert len(out) == 2 and sum(t.numel() for t in out.values()) == 27


def test_missing_file(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"\[load\] no such file"):
        pe.load(tmp_path / "nope.safetensors")


@pytest.mark.skipif(
    importlib.util.find_spec("safetensors") is None,
    reason="the safetensors package is not installed",
)
def test_interop_with_reference_implementation(tmp_path):
    from safetensors.numpy import load_file, save_file

    arrays = {k: v for k, v in _all_dtypes().items()}
    save_file(arrays, str(tmp_path / "theirs.safetensors"), metadata={"k": "v"})
    ours = pe.load(tmp_path / "theirs.safetensors")
    pe.save(arrays, tmp_path / "ours.safetensors", metadata={"k": "v"})
    theirs = load_file(str(tmp_path / "ours.safetensors"))
    for k, v in arrays.items():
        np.testing.assert_array_equal(_bits(ours[k].numpy()), _bits(v), err_msg=k)
        np.testing.assert_array_equal(_bits(theirs[k]), _bits(v), err_msg=k)
        assert theirs[k].dtype == v.dtype and ours[k].dtype == v.dtype
