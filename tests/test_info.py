"""pe.info(), thread and ISA controls, PYENGINE_CPU_ISA, and `python -m pyengine info`."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest

import pyengine as pe

REQUIRED_KEYS = {
    "version",
    "cpu_isa",
    "supported_cpu_isas",
    "num_threads",
    "openmp",
    "cuda_built",
    "cuda_devices",
    "build_type",
}


def _cpu_flags() -> set[str]:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def _run(args, **env):
    e = dict(os.environ)
    e.update(env)
    return subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, env=e, timeout=120
    )


def test_info_keys_and_types():
    info = pe.info()
    assert isinstance(info, dict)
    missing = REQUIRED_KEYS - set(info)
    assert not missing, f"missing keys {missing}"
    assert isinstance(info["version"], str) and info["version"]
    assert info["version"] == getattr(pe, "__version__", info["version"])
    assert isinstance(info["openmp"], bool)
    assert isinstance(info["cuda_built"], bool)
    assert isinstance(info["num_threads"], int) and info["num_threads"] >= 1
    assert info["cpu_isa"] in info["supported_cpu_isas"]
    assert list(info["supported_cpu_isas"]) == list(pe.supported_cpu_isas())
    assert isinstance(info["build_type"], str)


def test_supported_isas_match_cpu():
    isas = pe.supported_cpu_isas()
    assert "generic" in isas
    flags = _cpu_flags()
    if not flags:
        pytest.skip("no /proc/cpuinfo")
    assert ("avx2" in isas) == ({"avx2", "fma"} <= flags)
    if "avx512" in isas:
        assert "avx512f" in flags
    if {"avx512f", "avx512vl", "avx512bw", "avx512dq"} <= flags:
        assert "avx512" in isas


def test_default_isa_is_best_supported():
    r = _run(["-c", "import pyengine as pe; print(pe.get_cpu_isa())"], PYENGINE_CPU_ISA="")
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == pe.supported_cpu_isas()[-1], r.stdout


def test_set_get_num_threads():
    prev = pe.get_num_threads()
    try:
        pe.set_num_threads(1)
        assert pe.get_num_threads() == 1
        assert pe.info()["num_threads"] == 1
        pe.set_num_threads(2)
        assert pe.get_num_threads() == 2
    finally:
        pe.set_num_threads(prev)
    assert pe.get_num_threads() == prev


def test_set_get_cpu_isa():
    prev = pe.get_cpu_isa()
    try:
        for isa in pe.supported_cpu_isas():
            pe.set_cpu_isa(isa)
            assert pe.get_cpu_isa() == isa
            assert pe.info()["cpu_isa"] == isa
            # and the kernel still computes under it
            C = np.zeros(4)
            pe.gemm(False, False, 2, 2, 3, 1.0, np.arange(6.0), 3, np.arange(6.0), 2, 0.0, C, 2)
            np.testing.assert_array_equal(
                C.reshape(2, 2), np.arange(6.0).reshape(2, 3) @ np.arange(6.0).reshape(3, 2)
            )
    finally:
        pe.set_cpu_isa(prev)
    assert pe.get_cpu_isa() == prev


@pytest.mark.parametrize("isa", pe.supported_cpu_isas())
def test_env_var_forces_isa(isa):
    r = _run(["-c", "import pyengine as pe; print(pe.get_cpu_isa())"], PYENGINE_CPU_ISA=isa)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip() == isa


def test_cli_info_prints_isa():
    r = _run(["-m", "pyengine", "info"])
    assert r.returncode == 0, r.stderr
    assert pe.get_cpu_isa() in r.stdout
    assert pe.info()["version"] in r.stdout


@pytest.mark.parametrize("isa", pe.supported_cpu_isas())
def test_cli_info_reflects_forced_isa(isa):
    r = _run(["-m", "pyengine", "info"], PYENGINE_CPU_ISA=isa)
    assert r.returncode == 0, r.stderr
    line = [ln for ln in r.stdout.splitlines() if ln.split() and ln.split()[0] == "cpu_isa"]
    assert line, r.stdout
    assert line[0].split()[-1] == isa, line[0]
