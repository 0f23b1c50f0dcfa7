"""The bench runner's plumbing (not its timings): unknown families, the plot."""

import pytest

from pyengine import bench


def test_unknown_family_is_refused(capsys):
    assert bench.main(["no_such_family"]) == 2
    assert "[bench] unknown op families" in capsys.readouterr().out


def test_plot_writes_a_png(tmp_path):
    pytest.importorskip("matplotlib", reason="--plot needs matplotlib (in the test extra)")
    results = {
        "machine": {"pyengine": "0", "cpu": "test", "threads": 1},
        "gemm": [{"case": "a", "pyengine": 2.0, "numpy": 1.0, "ratio": 2.0}],
        "conv": [{"case": "b", "pyengine": 1.0, "torch": 2.0, "ratio": 0.5}],
    }
    out = tmp_path / "ratios.png"
    bench.plot(results, str(out))
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plot_without_ratios_is_an_error(tmp_path):
    pytest.importorskip("matplotlib", reason="--plot needs matplotlib (in the test extra)")
    with pytest.raises(ValueError, match=r"^\[bench\]"):
        bench.plot({"machine": {}, "gemm": [{"case": "a", "pyengine": 1.0}]}, str(tmp_path / "x"))


def test_cuda_bench_refuses_unknown_families_and_missing_gpu(capsys):
    from pyengine.__main__ import main
    from pyengine.backend import cuda as pcuda

    assert main(["bench", "--device", "cuda", "no_such_family"]) == 2
    assert "[bench] unknown GPU families" in capsys.readouterr().out
    if pcuda.is_available():
        pytest.skip("a GPU is present: the missing-GPU message cannot be checked here")
    assert main(["bench", "--device", "cuda", "norm"]) == 2
    assert "[bench] --device cuda needs a CUDA GPU" in capsys.readouterr().out
