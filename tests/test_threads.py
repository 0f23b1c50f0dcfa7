"""Threads: kernels release the GIL (Python code in another thread runs while a kernel
computes), and concurrent calls from several Python threads agree with serial calls."""

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


def _family_calls():
    """One forward+backward call per kernel family, each returning its outputs as NumPy arrays."""
    import pyengine.functional as F

    rng = np.random.default_rng(7)

    def t(*shape):
        return pe.from_numpy(rng.standard_normal(shape, dtype=np.float32)).requires_grad_(True)

    x_conv, w_conv = t(2, 8, 12, 11), t(16, 8, 3, 3)
    x_pool, x_norm, w_norm = t(2, 4, 9, 9), t(16, 48), t(48)
    x_sm = t(32, 40)
    q, k, v = t(2, 2, 33, 16), t(2, 2, 33, 16), t(2, 2, 33, 16)
    pe.manual_seed(7)  # the same LSTM weights in every set of calls
    lstm = pe.nn.LSTM(12, 20)
    x_lstm = t(6, 3, 12)

    def run(fn, *inputs):
        def call():
            for i in inputs:
                i.grad = None
            out = fn()
            out.sum().backward()
            return [out.detach().numpy().copy()] + [i.grad.numpy().copy() for i in inputs]

        return call

    return [
        run(lambda: F.conv2d(x_conv, w_conv, padding=1), x_conv, w_conv),
        run(lambda: F.conv_transpose2d(x_conv, w_conv.transpose(0, 1), stride=2), x_conv),
        run(lambda: F.max_pool2d(x_pool, 3, 2, 1) + F.avg_pool2d(x_pool, 3, 2, 1), x_pool),
        run(lambda: F.layer_norm(x_norm, (48,), w_norm), x_norm, w_norm),
        run(lambda: F.log_softmax(x_sm, dim=-1) * x_sm, x_sm),
        run(lambda: F.scaled_dot_product_attention(q, k, v, is_causal=True), q, k, v),
        run(lambda: lstm(x_lstm)[0], x_lstm),
        run(lambda: (x_norm @ x_norm.t()).tanh(), x_norm),
    ]


def test_kernels_from_four_python_threads_match_serial_calls():
    """Every family called concurrently from 4 Python threads (GIL released, per-thread
    workspaces) gives bitwise the results of serial calls."""
    calls = _family_calls()
    serial = [call() for call in calls]
    results = {}
    errors = []

    # Each worker needs its own leaf tensors (grads are written into them): rebuild per worker.
    worker_calls = [_family_calls() for _ in range(4)]

    def work_own(worker):
        try:
            for rep in range(3):
                for j, call in enumerate(worker_calls[worker]):
                    results[(worker, rep, j)] = call()
        except Exception as e:  # noqa: BLE001 - reported below
            errors.append(e)

    threads = [threading.Thread(target=work_own, args=(w,)) for w in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    assert not errors, errors
    assert len(results) == 4 * 3 * len(calls)
    for (worker, rep, j), arrays in results.items():
        for got, want in zip(arrays, serial[j]):
            msg = f"call {j}, thread {worker}, rep {rep}"
            np.testing.assert_array_equal(got, want, err_msg=msg)
