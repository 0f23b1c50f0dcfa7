"""The demo (python -m pyengine demo): a shortened training run must learn (loss falls well
below its start, test accuracy far above chance), the CLI must run, and a torch LeNet's state
dict must load into ours and give the same outputs."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

import pyengine as pe

HAS_SKLEARN = importlib.util.find_spec("sklearn") is not None
HAS_TORCH = importlib.util.find_spec("torch") is not None
needs_sklearn = pytest.mark.skipif(
    not HAS_SKLEARN, reason="scikit-learn is not installed (pip install 'pyengine[test]')"
)

demo = pytest.importorskip("pyengine.demo")


@needs_sklearn
def test_digits_split():
    xtr, ytr, xte, yte = demo.load_digits(0)
    assert xtr.shape[1:] == (1, 8, 8) and xtr.dtype == np.float32 and ytr.dtype == np.int64
    assert len(xtr) + len(xte) == 1797 and 340 <= len(xte) <= 380
    assert abs(float(xtr.mean())) < 1e-5 and float(xtr.std()) == pytest.approx(1.0, rel=1e-4)
    assert sorted(np.unique(yte)) == list(range(10))  # stratified


@needs_sklearn
def test_short_training_run_learns():
    res = demo.run(epochs=3, batch_size=32, seed=0, progress=False, max_steps=60)
    losses = res["losses"]
    assert len(losses) == 60
    start, end = float(np.mean(losses[:3])), float(np.mean(losses[-10:]))
    assert start > 1.5  # ~ln(10) at initialization
    assert end < 0.35 * start, (start, end)
    assert res["test_accuracy"] > 0.8  # chance is 0.1


@needs_sklearn
def test_cli_demo_runs(capsys):
    from pyengine.__main__ import main

    assert main(["demo", "--epochs", "1", "--batch-size", "64", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "test accuracy:" in out and "samples/s" in out


def test_unknown_model():
    with pytest.raises(ValueError, match=r"\[demo\] unknown model"):
        demo.build_model("resnet")


def test_models_build_or_say_not_available():
    for name in demo.MODELS:
        try:
            m = demo.build_model(name)
        except NotImplementedError as e:
            assert "not available yet" in str(e)
        else:
            out = m(pe.randn(3, 1, 8, 8))
            assert out.shape == (3, 10)


@pytest.mark.skipif(not HAS_TORCH, reason="torch is not installed")
def test_torch_lenet_state_dict_loads_and_matches():
    import torch
    from torch import nn as tnn

    try:
        ours = demo.build_model("lenet")
    except NotImplementedError as e:
        pytest.skip(str(e))

    class TorchLeNet(tnn.Module):
        def __init__(self):
            super().__init__()
            self.features = tnn.Sequential(
                tnn.Conv2d(1, 16, 3, padding=1),
                tnn.BatchNorm2d(16),
                tnn.ReLU(),
                tnn.MaxPool2d(2),
                tnn.Conv2d(16, 32, 3, padding=1),
                tnn.BatchNorm2d(32),
                tnn.ReLU(),
                tnn.MaxPool2d(2),
            )
            self.classifier = tnn.Sequential(
                tnn.Flatten(),
                tnn.Linear(128, 64),
                tnn.ReLU(),
                tnn.Dropout(0.25),
                tnn.Linear(64, 10),
            )

        def forward(self, x):
            return self.classifier(self.features(x))

    torch.manual_seed(0)
    theirs = TorchLeNet()
    theirs.train()
    with torch.no_grad():  # move the BatchNorm statistics away from their defaults
        for _ in range(3):
            theirs(torch.randn(16, 1, 8, 8) * 2 + 0.5)
    theirs.eval()
    sd = {k: v.detach().numpy() for k, v in theirs.state_dict().items()}
    assert list(ours.state_dict()) == list(sd)
    res = ours.load_state_dict(sd)
    assert not res.missing_keys and not res.unexpected_keys
    ours.eval()
    x = np.random.default_rng(0).normal(size=(5, 1, 8, 8)).astype(np.float32)
    want = theirs(torch.from_numpy(x)).detach().numpy()
    with pe.no_grad():
        got = ours(pe.tensor(x)).numpy()
    np.testing.assert_allclose(got, want, rtol=1e-4, atol=1e-5)
