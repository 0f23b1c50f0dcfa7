"""Argument checks shared by the creation functions and the op families.

Output sizes are checked before anything is allocated: an element count whose byte size does
not fit the address space is a ValueError naming the op; an allocation that the system refuses
is a MemoryError naming the op (never a crash, never NumPy's unprefixed message).
"""

from __future__ import annotations

import math
import numbers
import os
import sys

import numpy as np


def _memory_limit() -> int:
    """Physical memory plus swap in bytes (no allocation can exceed it here)."""
    global _LIMIT
    if _LIMIT is None:
        try:
            limit = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
            with open("/proc/meminfo") as f:
                for line in f:
                    if line.startswith("SwapTotal:"):
                        limit += int(line.split()[1]) * 1024
        except (ValueError, OSError, AttributeError):
            limit = sys.maxsize
        _LIMIT = max(int(limit), 1)
    return _LIMIT


_LIMIT = None


def check_numel(op: str, shape, dtype, allocates: bool = True) -> int:
    """The element count of shape. ValueError when its bytes cannot be addressed; MemoryError,
    before malloc is called, when they exceed this machine's memory and swap (a clear error
    naming the op rather than an overcommitted block the OOM killer meets later; a malloc that
    does fail is harmless to the allocator tuning, which keeps one arena). allocates=False
    (views): only the addressing limit."""
    n = math.prod(int(s) for s in shape)
    nbytes = n * np.dtype(dtype).itemsize
    if nbytes > sys.maxsize:
        raise ValueError(
            f"[{op}] an output of shape {tuple(int(s) for s in shape)} ({n} elements of "
            f"{np.dtype(dtype)}) does not fit in memory's address space"
        )
    if allocates and nbytes > _memory_limit():
        raise MemoryError(
            f"[{op}] an output of shape {tuple(int(s) for s in shape)} needs {nbytes} bytes, "
            f"more than this machine's memory and swap ({_memory_limit()} bytes)"
        )
    return n


class _OpNamed:
    """Re-raise an exception of one of TYPES from the block as its own base type (the first of
    TYPES it is an instance of) with the op's name in front, unless it already names an op.
    A class, not @contextmanager: it wraps hot elementwise ops and costs less this way."""

    __slots__ = ("op",)
    TYPES: tuple = ()
    EMPTY = "failed"

    def __init__(self, op: str) -> None:
        self.op = op

    def __enter__(self) -> None:
        return None

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc_type is not None and issubclass(exc_type, self.TYPES):
            msg = str(exc)
            if not msg.startswith("["):
                base = next(t for t in self.TYPES if isinstance(exc, t))
                raise base(f"[{self.op}] {msg or self.EMPTY}") from None
        return False


class allocating(_OpNamed):  # noqa: N801  (used like a function: `with allocating(op):`)
    """A MemoryError from the block, with the op's name in front of its message."""

    __slots__ = ()
    TYPES = (MemoryError,)
    EMPTY = "out of memory"


class named_errors(_OpNamed):  # noqa: N801
    """A ValueError / TypeError / IndexError from NumPy inside the block (shapes that do not
    broadcast, values that do not convert), the same type with the op's name in front."""

    __slots__ = ()
    TYPES = (IndexError, TypeError, ValueError)


def check_sizes(op: str, size) -> tuple:
    """A shape given as ints (or one sequence of ints): non-negative integers, as a tuple."""
    if len(size) == 1 and isinstance(size[0], (tuple, list)):
        size = tuple(size[0])
    for s in size:
        if isinstance(s, bool) or not isinstance(s, numbers.Integral):
            raise TypeError(f"[{op}] sizes must be integers, got {tuple(size)}")
        if s < 0:
            raise ValueError(f"[{op}] sizes must be non-negative, got {tuple(size)}")
    return tuple(int(s) for s in size)
