"""Shared fixtures: every CPU ISA path, thread counts, hypothesis profile."""

from __future__ import annotations

import os
import sys

import pytest
from hypothesis import HealthCheck, settings

sys.path.insert(0, os.path.dirname(__file__))  # `import helpers`, `from reference import ...`

import pyengine as pe  # noqa: E402

# Modest and reproducible: the whole suite must run in minutes on 2 cores.
settings.register_profile(
    "pyengine",
    max_examples=25,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "pyengine"))

CPU_ISAS = list(pe.supported_cpu_isas())


@pytest.fixture(params=CPU_ISAS)
def cpu_isa(request):
    """Run the test under each CPU ISA this machine supports, then restore the previous one."""
    prev = pe.get_cpu_isa()
    pe.set_cpu_isa(request.param)
    try:
        yield request.param
    finally:
        pe.set_cpu_isa(prev)


@pytest.fixture(params=[1, 2], ids=lambda n: f"threads{n}")
def num_threads(request):
    """Run the test with 1 and with 2 OpenMP threads, then restore the previous count."""
    prev = pe.get_num_threads()
    pe.set_num_threads(request.param)
    try:
        yield request.param
    finally:
        pe.set_num_threads(prev)


@pytest.fixture(autouse=True)
def _grad_mode_restored():
    """A test that leaves grad mode off would silently weaken every test after it."""
    yield
    assert pe.is_grad_enabled(), "test left grad mode disabled"
