"""The digits demo (python -m pyengine demo): a shortened training run must learn (loss falls
well below its start, test accuracy far above chance), the CLI must run, and a torch LeNet's state
dict must load into ours and give the same outputs. The character-level demos (--model
lstm|transformer) are tested in the second half of this file."""

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


def test_text_models_build():
    for name in ("lstm", "transformer"):
        try:
            m = demo.build_model(name, vocab_size=11)
        except NotImplementedError as e:
            assert "not available yet" in str(e)
            continue
        x = pe.tensor(np.random.default_rng(0).integers(0, 11, size=(3, 7)))
        out = m(x)
        logits = out[0] if isinstance(out, tuple) else out
        assert logits.shape == (3, 7, 11)


def test_digits_run_rejects_text_models():
    with pytest.raises(ValueError, match=r"\[demo\] run\(\) trains the digits model"):
        demo.run(model="lstm")


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


# ---- the character-level demos (pyengine/demo_text.py) --------------------------------------

demo_text = pytest.importorskip("pyengine.demo_text")


@pytest.fixture
def one_thread():
    """The learning runs below check learning, not threading (the kernels' tests do that):
    one thread keeps them at a few seconds even when other processes occupy the cores."""
    n = pe.get_num_threads()
    pe.set_num_threads(1)
    yield
    pe.set_num_threads(n)


TINY = {
    "lstm": dict(dims=dict(embed=16, hidden=64, layers=1), lr=1e-2),
    "transformer": dict(dims=dict(d_model=32, nhead=2, layers=1, ff=64), lr=1e-2),
}


def test_load_text_and_vocab():
    text, source = demo_text.load_text(50_000)
    assert len(text) == 50_000 and "chars" in source
    v = demo_text.Vocab(text, min_count=10)
    assert v.chars[-1] == demo_text.RARE and len(set(v.chars)) == len(v)
    assert " " in v.index and "e" in v.index
    ids = v.encode("the \x00x")
    assert ids.dtype == np.int64 and ids[-2] == v.rare  # unseen character -> the rare symbol
    assert v.decode(v.encode("the if")) == "the if"
    h = demo_text.unigram_entropy(v.encode(text), len(v))
    assert 2.0 < h < np.log(len(v))  # English text: ~3.2 nats/char


def test_load_text_falls_back_to_docstrings(monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "pydoc_data.topics", None)  # import now raises ImportError
    text, source = demo_text.load_text(20_000)
    assert source.startswith("docstrings of the stdlib modules") and len(text) == 20_000


def test_transformer_is_causal():
    pe.manual_seed(0)
    m = demo_text.CharTransformer(13, block_size=12, d_model=16, nhead=2, layers=2, ff=32)
    m.eval()
    rng = np.random.default_rng(1)
    a = rng.integers(0, 13, size=(2, 12))
    b = a.copy()
    b[:, 7:] = rng.integers(0, 13, size=(2, 5))  # change only the future of position 6
    with pe.no_grad():
        la, lb = m(pe.tensor(a)).numpy(), m(pe.tensor(b)).numpy()
    np.testing.assert_allclose(la[:, :7], lb[:, :7], rtol=1e-5, atol=1e-6)
    assert np.abs(la[:, 7:] - lb[:, 7:]).max() > 1e-4  # and the future does matter there


@pytest.mark.parametrize("model", ["lstm", "transformer"])
def test_short_text_run_learns(model, one_thread):
    lines = []
    res = demo_text.run_text(
        model,
        steps=60,
        batch_size=16,
        seq_len=32,
        seed=0,
        progress=False,
        max_chars=60_000,
        val_chars=4_000,
        log_every=20,
        sample_chars=40,
        log=lines.append,
        **TINY[model],
    )
    v = res["vocab"]
    start, end = res["start_loss"], res["end_loss"]
    assert len(res["losses"]) == 60
    assert start > 0.9 * np.log(len(v)), (start, np.log(len(v)))  # ~log(V) at initialization
    assert end < 0.8 * start and end < np.log(len(v)), (start, end)
    assert np.isfinite(res["val_nats"]) and res["val_nats"] < np.log(len(v))
    assert res["val_bits"] == pytest.approx(res["val_nats"] / np.log(2))
    s = res["sample"]
    assert isinstance(s, str) and s.startswith("The ") and len(s) == len("The ") + 40
    assert set(s) <= set(v.chars)
    assert sum(line.startswith("step ") for line in lines) == 4  # steps 1, 20, 40, 60


def test_sample_is_seeded():
    pe.manual_seed(0)
    v = demo_text.Vocab("abcabc ab", min_count=1)
    m = demo_text.CharLSTM(len(v), embed=4, hidden=8)
    s1 = demo_text.sample(m, v, "ab", 30, 1.0, np.random.default_rng(3))
    s2 = demo_text.sample(m, v, "ab", 30, 1.0, np.random.default_rng(3))
    assert s1 == s2 and len(s1) == 32
    with pytest.raises(ValueError, match=r"\[demo\] temperature"):
        demo_text.sample(m, v, "ab", 3, 0.0)


def test_cli_text_demo_runs(capsys, one_thread):
    from pyengine.__main__ import main

    argv = ["demo", "--model", "lstm", "--steps", "3", "--batch-size", "4", "--no-progress"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "held-out loss:" in out and "bits/char" in out and "sample" in out and "->" in out
    assert main(["demo", "--model", "transformer", "--steps", "0", "--no-progress"]) == 1
    assert "[demo] steps" in capsys.readouterr().out
