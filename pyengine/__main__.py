"""The command line: python -m pyengine info | demo | bench."""

from __future__ import annotations

import argparse
import sys


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="pyengine", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    sub.add_parser("info", help="print version, build flags, CPU ISA, threads and CUDA state")
    b = sub.add_parser("bench", help="side-by-side benchmarks against NumPy/PyTorch")
    b.add_argument("ops", nargs="*", help="op families to run (default: gemm on cpu, all on cuda)")
    b.add_argument(
        "--device",
        default="cpu",
        choices=["cpu", "cuda"],
        help="cpu: against NumPy/PyTorch on the CPU; cuda: against cuBLAS/cuDNN/SDPA (needs a "
        "GPU, CuPy and PyTorch)",
    )
    b.add_argument("--json", help="also write the results to this JSON file")
    b.add_argument("--quick", action="store_true", help="fewer repeats and sizes")
    b.add_argument("--plot", help="also draw the ratios into this PNG (needs matplotlib)")
    d = sub.add_parser(
        "demo",
        help="train a small CNN on scikit-learn's digits, or (--model lstm|transformer) a "
        "character-level model on Python's own documentation (needs the demo extra)",
    )
    d.add_argument("--epochs", type=int, default=15, help="lenet: epochs (default 15)")
    d.add_argument(
        "--steps",
        type=int,
        default=None,
        help="lstm/transformer: training steps (default: per model)",
    )
    d.add_argument(
        "--batch-size", type=int, default=None, help="default: 32 (lenet), per model (text)"
    )
    d.add_argument(
        "--lr",
        type=float,
        default=None,
        help="peak learning rate of the one-cycle schedule (default: per model)",
    )
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--device", default="cpu", help="cpu or cuda")
    d.add_argument("--model", default="lenet", choices=["lenet", "lstm", "transformer"])
    d.add_argument("--no-progress", action="store_true", help="no tqdm progress bar")
    args = parser.parse_args(argv)
    if args.command == "info":
        import pyengine

        pyengine.info(print_=True)
        return 0
    if args.command == "demo":
        from . import demo

        return demo.main(args)
    if args.command == "bench":
        if args.device == "cuda":
            from .bench import gpu

            return gpu.main(args.ops, quick=args.quick, json_path=args.json)
        from . import bench

        return bench.main(
            args.ops or ["gemm"], json_path=args.json, quick=args.quick, plot_path=args.plot
        )
    return 2


if __name__ == "__main__":
    sys.exit(main())
