"""Side-by-side benchmarks: `python -m pyengine bench [ops...]`.

Each op family has a module here (gemm.py, ...) with a `cases(quick)` list; every case times
pyengine, NumPy and PyTorch (when installed) through their public Python APIs in the same
process, and reports GFLOP/s and the ratio to the best other library.
"""

from __future__ import annotations

import importlib
import json
import platform
import time
from typing import Callable, Optional

FAMILIES = ["gemm", "conv", "attention", "norm", "softmax", "activation", "pool", "lstm", "gru"]


def machine() -> dict:
    """What the numbers were measured on."""
    import numpy as np

    import pyengine

    cpu = platform.processor() or "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    info = {
        "cpu": cpu,
        "threads": pyengine.get_num_threads(),
        "isa": pyengine.get_cpu_isa(),
        "numpy": np.__version__,
        "pyengine": pyengine.__version__,
    }
    torch = optional_torch()
    if torch is not None:
        info["torch"] = torch.__version__
    return info


def optional_torch():
    try:
        import torch
    except ImportError:
        return None
    import pyengine

    torch.set_num_threads(pyengine.get_num_threads())
    return torch


def timeit(fn: Callable[[], object], min_time: float = 0.2, repeats: int = 5) -> float:
    """Median seconds per call: calls are batched so one sample lasts about min_time/repeats."""
    fn()  # warm-up: workspaces, caches, lazy imports
    t0 = time.perf_counter()
    fn()
    one = max(time.perf_counter() - t0, 1e-7)
    inner = max(1, int(min_time / repeats / one))
    samples = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        for _ in range(inner):
            fn()
        samples.append((time.perf_counter() - t0) / inner)
    samples.sort()
    return samples[len(samples) // 2]


def run_case(name: str, flops: float, impls: dict, min_time: float) -> dict:
    """impls: {'pyengine': fn, 'numpy': fn or None, 'torch': fn or None}."""
    row = {"case": name}
    for lib, fn in impls.items():
        if fn is not None:
            row[lib] = flops / timeit(fn, min_time) / 1e9
    others = [row[k] for k in row if k not in ("case", "pyengine")]
    if others:
        row["ratio"] = row["pyengine"] / max(others)
    return row


def print_table(title: str, rows: list, unit: str = "GFLOP/s") -> None:
    libs = [k for k in ("pyengine", "numpy", "torch") if any(k in r for r in rows)]
    width = max(len(r["case"]) for r in rows)
    head = f"{'case':<{width}}  " + "  ".join(f"{lib:>9}" for lib in libs) + "  ratio*"
    print(f"\n{title} ({unit}; ratio* = pyengine / best other)")
    print(head)
    for r in rows:
        vals = "  ".join(f"{r[lib]:9.1f}" if lib in r else f"{'-':>9}" for lib in libs)
        ratio = f"{r['ratio']:6.2f}x" if "ratio" in r else "     -"
        print(f"{r['case']:<{width}}  {vals}  {ratio}")


def plot(results: dict, path: str) -> None:
    """One horizontal bar per case: pyengine / best other library, a line at 1.0."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise RuntimeError("[bench] --plot needs matplotlib: pip install matplotlib") from None
    rows = [
        (f"{fam}: {r['case']}", r["ratio"])
        for fam, rs in results.items()
        if fam != "machine"
        for r in rs
        if "ratio" in r
    ]
    if not rows:
        raise ValueError("[bench] --plot: no case has a ratio to plot")
    fig, ax = plt.subplots(figsize=(9, 0.28 * len(rows) + 1.2))
    names, ratios = zip(*rows)
    ax.barh(range(len(rows)), ratios, color=["tab:green" if r >= 1 else "tab:red" for r in ratios])
    ax.set_yticks(range(len(rows)), names, fontsize=7)
    ax.invert_yaxis()
    ax.axvline(1.0, color="black", linewidth=0.8)
    ax.set_xlabel("pyengine / best other library (higher is better)")
    m = results["machine"]
    ax.set_title(f"pyengine {m['pyengine']} on {m['cpu']}, {m['threads']} threads", fontsize=9)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def main(
    ops: list, json_path: Optional[str] = None, quick: bool = False, plot_path: Optional[str] = None
) -> int:
    unknown = [o for o in ops if o not in FAMILIES]
    if unknown:
        print(f"[bench] unknown op families {unknown}; available: {FAMILIES}")
        return 2
    m = machine()
    print("machine:", ", ".join(f"{k}={v}" for k, v in m.items()))
    results = {"machine": m}
    for op in ops:
        mod = importlib.import_module(f"{__name__}.{op}")
        rows = mod.run(quick=quick)
        print_table(op, rows, getattr(mod, "UNIT", "GFLOP/s"))
        results[op] = rows
    if json_path:
        with open(json_path, "w") as f:
            json.dump(results, f, indent=1)
    if plot_path:
        plot(results, plot_path)
        print(f"plot written to {plot_path}")
    return 0
