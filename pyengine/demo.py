"""The demo: train a small LeNet-style CNN on scikit-learn's 8x8 digits and report accuracy.

    python -m pyengine demo [--epochs 15] [--batch-size 32] [--lr 3e-3] [--seed 0] [--device cpu]
                            [--model lenet|lstm|transformer] [--steps N] [--no-progress]

``--model lstm`` and ``--model transformer`` train character-level language models on text that
ships with Python instead (pyengine/demo_text.py).

Conv2d -> BatchNorm2d -> ReLU -> MaxPool2d (twice), then Linear -> ReLU -> Dropout -> Linear,
trained with AdamW under a one-cycle schedule; a tqdm bar shows the loss and samples/s. The
1797 images are split 80/20 (stratified, seeded). Needs the ``demo`` extra
(``pip install "pyengine[demo]"``: scikit-learn, tqdm).
"""

from __future__ import annotations

import time
from typing import Dict, Optional

import numpy as np

import pyengine as pe
from pyengine import functional as F
from pyengine import nn

__all__ = ["LeNet", "load_digits", "run", "main"]

MODELS = ("lenet", "lstm", "transformer")


class LeNet(nn.Module):
    """A LeNet-style CNN for 1x8x8 images."""

    def __init__(self, num_classes: int = 10, dropout: float = 0.25) -> None:
        super().__init__()
        self.features = nn.Sequential(
            nn.Conv2d(1, 16, kernel_size=3, padding=1),
            nn.BatchNorm2d(16),
            nn.ReLU(),
            nn.MaxPool2d(2),  # 16 x 4 x 4
            nn.Conv2d(16, 32, kernel_size=3, padding=1),
            nn.BatchNorm2d(32),
            nn.ReLU(),
            nn.MaxPool2d(2),  # 32 x 2 x 2
        )
        self.classifier = nn.Sequential(
            nn.Flatten(),
            nn.Linear(32 * 2 * 2, 64),
            nn.ReLU(),
            nn.Dropout(dropout),
            nn.Linear(64, num_classes),
        )

    def forward(self, x):
        return self.classifier(self.features(x))


_REQUIRES = {
    "lenet": ("Conv2d", "BatchNorm2d", "MaxPool2d", "ReLU"),
    "lstm": ("Embedding", "LSTM"),
    "transformer": ("Embedding", "TransformerEncoder", "TransformerEncoderLayer", "LayerNorm"),
}


def build_model(name: str, vocab_size: int = 98) -> nn.Module:
    """The model of the demo `name` (vocab_size: for the character-level models)."""
    if name not in MODELS:
        raise ValueError(f"[demo] unknown model {name!r}; choose one of {', '.join(MODELS)}")
    missing = [layer for layer in _REQUIRES[name] if not hasattr(nn, layer)]
    if missing:
        raise NotImplementedError(
            f"[demo] --model {name} is not available yet: pyengine.nn lacks {', '.join(missing)}"
        )
    if name == "lenet":
        return LeNet()
    from .demo_text import DEFAULTS, build_text_model

    cfg = DEFAULTS[name]
    return build_text_model(name, vocab_size, cfg.seq_len, **cfg.dims)


def load_digits(seed: int = 0, test_fraction: float = 0.2):
    """(x_train, y_train, x_test, y_test): float32 images (N, 1, 8, 8) standardized with the
    training set's mean and std, int64 labels; a stratified split seeded by seed."""
    try:
        from sklearn.datasets import load_digits as _sk_load_digits
    except ImportError as e:
        raise ImportError(
            "[demo] needs scikit-learn: pip install 'pyengine[demo]' (scikit-learn, tqdm)"
        ) from e
    d = _sk_load_digits()
    x = d.images.astype(np.float32)[:, None] / 16.0
    y = d.target.astype(np.int64)
    rng = np.random.default_rng(seed)
    test = np.zeros(len(y), bool)
    for c in np.unique(y):  # stratified: the same fraction of each class
        idx = rng.permutation(np.flatnonzero(y == c))
        test[idx[: int(round(len(idx) * test_fraction))]] = True
    xtr, xte = x[~test], x[test]
    mean, std = float(xtr.mean()), float(xtr.std())
    return (xtr - mean) / std, y[~test], (xte - mean) / std, y[test]


def cross_entropy(logits, target):
    """F.cross_entropy where it exists; else log-softmax + NLL composed of Tensor ops."""
    if hasattr(F, "cross_entropy"):
        return F.cross_entropy(logits, target)
    m = logits.amax(1, keepdim=True).detach()
    z = logits - m
    logp = z - z.exp().sum(1, keepdim=True).log()
    onehot = np.zeros(logits.shape, dtype=logits.dtype)
    onehot[np.arange(logits.shape[0]), target.cpu().numpy()] = 1
    return -(logp * pe.tensor(onehot, device=logits.device)).sum() / logits.shape[0]


def evaluate(model: nn.Module, x, y, batch_size: int = 512) -> float:
    model.eval()
    correct = 0
    with pe.no_grad():
        for i in range(0, x.shape[0], batch_size):
            logits = model(x[i : i + batch_size])
            pred = logits.argmax(1).cpu().numpy()
            correct += int((pred == y[i : i + batch_size].cpu().numpy()).sum())
    model.train()
    return correct / x.shape[0]


DEFAULT_LR = {"lenet": 3e-3}


def run(
    epochs: int = 15,
    batch_size: int = 32,
    lr: Optional[float] = None,
    seed: int = 0,
    device: str = "cpu",
    model: str = "lenet",
    progress: bool = True,
    max_steps: Optional[int] = None,
) -> Dict[str, object]:
    """Train and evaluate on the digits; returns {'losses': per-step losses, 'test_accuracy',
    'seconds', 'samples_per_s'}. max_steps (optional) stops training early (for quick tests).
    The character-level models train with demo_text.run_text."""
    if model != "lenet":
        raise ValueError(
            f"[demo] run() trains the digits model (lenet); use demo_text.run_text for {model!r}"
        )
    if lr is None:
        lr = DEFAULT_LR.get(model, 3e-3)
    pe.manual_seed(seed)
    xtr, ytr, xte, yte = load_digits(seed)
    net = build_model(model).to(device)
    xtr_t, ytr_t = pe.tensor(xtr, device=device), pe.tensor(ytr, device=device)
    xte_t, yte_t = pe.tensor(xte, device=device), pe.tensor(yte, device=device)
    loader = pe.data.DataLoader(
        pe.data.TensorDataset(xtr_t, ytr_t), batch_size=batch_size, shuffle=True, seed=seed
    )
    steps = epochs * len(loader)
    if max_steps is not None:
        steps = min(steps, max_steps)
    opt = pe.optim.AdamW(net.parameters(), lr=lr, weight_decay=1e-4)
    sched = pe.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=max(steps, 1))
    bar = None
    if progress:
        try:
            from tqdm.auto import tqdm

            n = len(loader.dataset)
            total = epochs * n if max_steps is None else min(steps * batch_size, epochs * n)
            bar = tqdm(
                total=total,
                unit="samples",
                unit_scale=True,
                desc=f"{model} digits",
                dynamic_ncols=True,
            )
        except ImportError:
            print("[demo] tqdm is not installed (pip install 'pyengine[demo]'): no progress bar")
    losses = []
    seen = 0
    t0 = time.perf_counter()
    step = 0
    for epoch in range(epochs):
        for xb, yb in loader:
            if step >= steps:
                break
            loss = cross_entropy(net(xb), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
            step += 1
            losses.append(loss.item())
            seen += xb.shape[0]
            if bar is not None:
                bar.update(xb.shape[0])
                if step % 5 == 0 or step == steps:
                    rate = seen / max(time.perf_counter() - t0, 1e-9)
                    bar.set_postfix(
                        epoch=epoch + 1,
                        loss=f"{np.mean(losses[-10:]):.4f}",
                        samples_s=f"{rate:.0f}",
                        refresh=False,
                    )
    seconds = time.perf_counter() - t0
    if bar is not None:
        bar.close()
    acc = evaluate(net, xte_t, yte_t)
    return {
        "losses": losses,
        "test_accuracy": acc,
        "seconds": seconds,
        "samples_per_s": seen / max(seconds, 1e-9),
        "n_test": int(xte.shape[0]),
        "model": net,
    }


def main(args) -> int:
    if args.model not in MODELS:
        print(f"[demo] unknown model {args.model!r}; choose one of {', '.join(MODELS)}")
        return 2
    if args.model != "lenet":
        missing = [layer for layer in _REQUIRES[args.model] if not hasattr(nn, layer)]
        if missing:
            print(f"[demo] --model {args.model} needs pyengine.nn.{', '.join(missing)}")
            return 1
        from .demo_text import main_text

        return main_text(args)
    try:
        res = run(
            epochs=args.epochs,
            batch_size=32 if args.batch_size is None else args.batch_size,
            lr=args.lr,
            seed=args.seed,
            device=args.device,
            model=args.model,
            progress=not args.no_progress,
        )
    except (ImportError, NotImplementedError) as e:
        print(e)
        return 1
    print(
        f"trained {args.model} for {args.epochs} epochs in {res['seconds']:.1f} s "
        f"({res['samples_per_s']:.0f} samples/s, {pe.get_num_threads()} threads); "
        f"final loss {np.mean(res['losses'][-10:]):.4f}"
    )
    print(
        f"test accuracy: {100 * res['test_accuracy']:.2f}% "
        f"({int(round(res['test_accuracy'] * res['n_test']))}/{res['n_test']})"
    )
    return 0
