"""Whether CUDA can be used here, and why not: module built? CuPy installed? a GPU present?"""

from __future__ import annotations

import functools


@functools.cache
def status() -> dict:
    """{'built', 'cupy', 'devices', 'status'}; computed once per process."""
    out = {"built": False, "cupy": False, "devices": [], "status": ""}
    try:
        from . import _cuda
    except ImportError as e:
        out["status"] = f"pyengine._cuda was not built or does not import ({e})"
        return out
    out["built"] = True
    try:
        out["devices"] = [d["name"] for d in _cuda.devices()]
    except Exception as e:  # a driver problem is a reason, not a crash
        out["status"] = f"the CUDA runtime reported an error: {e}"
        return out
    try:
        import cupy  # noqa: F401

        out["cupy"] = True
    except ImportError:
        pass
    if not out["devices"]:
        out["status"] = "no CUDA GPU is visible"
        return out
    if not out["cupy"]:
        out["status"] = "CuPy is not installed (pip install 'pyengine[cuda]')"
        return out
    out["status"] = "ok"
    return out


def require(op: str):
    """The cupy module, or a RuntimeError naming op and why CUDA cannot be used."""
    s = status()
    if s["status"] != "ok":
        raise RuntimeError(f"[{op}] CUDA requested but unavailable: {s['status']}")
    import cupy

    return cupy


def is_available() -> bool:
    return status()["status"] == "ok"
