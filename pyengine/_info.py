"""Build and run-time facts: version, build flags, CPU ISA, threads, CUDA."""

from __future__ import annotations

import platform

from . import _C


def set_num_threads(n: int) -> None:
    """Threads used by CPU kernels (process-wide)."""
    _C.set_num_threads(int(n))


def get_num_threads() -> int:
    return _C.get_num_threads()


def trim_memory() -> bool:
    """Give freed CPU heap memory back to the OS (glibc malloc_trim); True if some was released.

    pyengine keeps freed arrays in the heap for reuse (fresh pages are slow to fault in), so a
    process's RSS does not fall after a large computation until this is called.
    """
    return bool(_C.trim_memory())


def set_cpu_isa(name: str) -> None:
    """Force a CPU kernel path: 'generic', 'avx2' or 'avx512' (must be supported here)."""
    _C.set_cpu_isa(str(name))


def get_cpu_isa() -> str:
    return _C.get_cpu_isa()


def supported_cpu_isas() -> list:
    return list(_C.supported_cpu_isas())


def _build_info() -> dict:
    try:
        from . import _build_info as b
    except ImportError:
        return {}
    return {k: getattr(b, k) for k in dir(b) if k.isupper()}


def _cuda_info() -> dict:
    from ._cuda_state import status

    return status()


def info(print_: bool = False) -> dict:
    """A dict of version, build flags, CPU ISA, threads and CUDA state (printed if asked)."""
    b = _build_info()
    c = _cuda_info()
    d = {
        "version": _C.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "build_type": b.get("BUILD_TYPE", "unknown"),
        "cxx_compiler": b.get("CXX_COMPILER", "unknown"),
        "openmp": _C.openmp_enabled(),
        "cpu_flags": _C.cpu_flags(),
        "cpu_isa": _C.get_cpu_isa(),
        "best_cpu_isa": _C.best_cpu_isa(),
        "supported_cpu_isas": supported_cpu_isas(),
        "num_threads": _C.get_num_threads(),
        "allocator": _C.allocator,
        "cuda_option": b.get("CUDA_OPTION", "unknown"),
        "cuda_compiler": b.get("CUDA_COMPILER", "").strip() or None,
        "cuda_archs": b.get("CUDA_ARCHS") if b.get("CUDA_BUILT") else None,
        "cuda_built": c["built"],
        "cupy": c["cupy"],
        "cuda_devices": c["devices"],
        "cuda_status": c["status"],
    }
    if print_:
        width = max(len(k) for k in d)
        for k, v in d.items():
            print(f"{k:<{width}}  {v}")
    return d
