"""The demo: train a small LeNet-style CNN on scikit-learn's 8x8 digits and report accuracy.

    python -m pyengine demo [--epochs 15] [--batch-size 32] [--lr 3e-3] [--seed 0] [--device cpu]
                            [--model lenet|lstm|transformer] [--no-progress]

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


class RowLSTM(nn.Module):
    """Reads the image row by row (8 steps of 8 pixels) with an LSTM."""

    def __init__(self, num_classes: int = 10, hidden: int = 64) -> None:
        super().__init__()
        self.lstm = nn.LSTM(8, hidden, batch_first=True)
        self.head = nn.Linear(hidden, num_classes)

    def forward(self, x):
        out, _ = self.lstm(x.reshape(x.shape[0], 8, 8))
        return self.head(out[:, -1])


class RowTransformer(nn.Module):
    """Rows as 8 tokens: a linear embedding, a learned position embedding, one encoder layer,
    mean pooling."""

    def __init__(self, num_classes: int = 10, d_model: int = 32, nhead: int = 4) -> None:
        super().__init__()
        self.embed = nn.Linear(8, d_model)
        self.pos = nn.Parameter(pe.zeros(1, 8, d_model))
        nn.init.normal_(self.pos, std=0.02)
        self.encoder = nn.TransformerEncoderLayer(
            d_model, nhead, dim_feedforward=64, dropout=0.1, batch_first=True
        )
        self.head = nn.Linear(d_model, num_classes)

    def forward(self, x):
        h = self.embed(x.reshape(x.shape[0], 8, 8)) + self.pos
        return self.head(self.encoder(h).mean(1))


_REQUIRES = {
    "lenet": ("Conv2d", "BatchNorm2d", "MaxPool2d", "ReLU"),
    "lstm": ("LSTM",),
    "transformer": ("TransformerEncoderLayer",),
}


def build_model(name: str) -> nn.Module:
    if name not in MODELS:
        raise ValueError(f"[demo] unknown model {name!r}; choose one of {', '.join(MODELS)}")
    missing = [layer for layer in _REQUIRES[name] if not hasattr(nn, layer)]
    if missing:
        raise NotImplementedError(
            f"[demo] --model {name} is not available yet: pyengine.nn lacks {', '.join(missing)}"
        )
    return {"lenet": LeNet, "lstm": RowLSTM, "transformer": RowTransformer}[name]()


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


DEFAULT_LR = {"lenet": 3e-3, "lstm": 3e-3, "transformer": 5e-3}


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
    """Train and evaluate; returns {'losses': per-step losses, 'test_accuracy', 'seconds',
    'samples_per_s'}. max_steps (optional) stops training early (for quick tests)."""
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
    try:
        res = run(
            epochs=args.epochs,
            batch_size=args.batch_size,
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
