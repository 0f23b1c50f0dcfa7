"""GRU cases: the LSTM cases (pyengine/bench/lstm.py) for nn.GRU / nn.GRUCell (3 gates)."""

from __future__ import annotations

from . import lstm as _lstm

UNIT = "GFLOP/s"
cases = _lstm.cases


def run(quick: bool = False) -> list:
    return _lstm.run(quick, mode="GRU", gates=3)
