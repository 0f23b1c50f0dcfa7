"""Kernels release the GIL: Python code in another thread runs while a kernel computes."""

import threading
import time

import numpy as np

import pyengine as pe


def _spin_rate_and_progress(call):
    """(iterations/s of a spinning Python thread alone, iterations it completes during call,
    seconds call took)."""
    count = [0]
    stop = threading.Event()

    def spin():
        while not stop.is_set():
            count[0] += 1

    t = threading.Thread(target=spin)
    t.start()
    t0, c0 = time.perf_counter(), count[0]
    time.sleep(0.05)  # the main thread sleeps (GIL free): the spinner's own rate
    rate = (count[0] - c0) / (time.perf_counter() - t0)
    before = count[0]
    t0 = time.perf_counter()
    call()
    elapsed = time.perf_counter() - t0
    during = count[0] - before
    stop.set()
    t.join()
    return rate, during, elapsed


def test_gemm_releases_the_gil():
    rng = np.random.default_rng(0)
    a = pe.from_numpy(rng.standard_normal((2048, 2048), dtype=np.float32))
    b = pe.from_numpy(rng.standard_normal((2048, 2048), dtype=np.float32))
    prev = pe.get_num_threads()
    pe.set_num_threads(1)  # leave the other core to the spinning thread
    try:
        a @ b  # warm-up: workspaces
        rate, during, elapsed = _spin_rate_and_progress(lambda: a @ b)
    finally:
        pe.set_num_threads(prev)
    # One call of ~17 GFLOP. Holding the GIL, the kernel would let the spinner run at most one
    # switch interval (5 ms) of the whole call; releasing it, the spinner runs throughout.
    share = during / (rate * elapsed)
    assert elapsed > 0.02, f"the call was too short ({elapsed:.3f} s) to tell"
    assert share > 0.25, f"the other thread ran {share:.0%} of the kernel's {elapsed:.3f} s"
