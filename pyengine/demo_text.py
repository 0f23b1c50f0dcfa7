"""The character-level demos: ``python -m pyengine demo --model lstm|transformer``.

A small character-level language model is trained on real English text that ships with CPython:
the language-reference topics of ``pydoc_data.topics`` (the text of ``help('if')`` and friends),
or, where a distribution strips pydoc_data, the docstrings of a few standard-library modules.
A bounded slice of the text is used; its last part is held out for validation. The vocabulary is
the characters present, those seen fewer than ``min_count`` times mapped to one symbol.

- ``lstm``: Embedding -> nn.LSTM -> Linear.
- ``transformer``: Embedding + learned positional embedding -> nn.TransformerEncoder of
  pre-norm TransformerEncoderLayer (batch_first, causal mask with the ``is_causal`` hint)
  -> LayerNorm -> Linear.

Both train with AdamW (one-cycle schedule, gradient clipping) and cross-entropy on random
windows drawn with a generator seeded by ``--seed``; a tqdm bar shows the loss and chars/s and
the loss is logged every ``log_every`` steps. At the end: the held-out loss in nats/char and
bits/char, and a sample generated from a prompt by temperature sampling (seeded).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

import pyengine as pe
from pyengine import functional as F
from pyengine import nn

__all__ = [
    "TEXT_MODELS",
    "Vocab",
    "CharLSTM",
    "CharTransformer",
    "load_text",
    "build_text_model",
    "sample",
    "evaluate_nats",
    "run_text",
]

TEXT_MODELS = ("lstm", "transformer")
RARE = "\ufffd"  # the symbol that stands for every rare character
FALLBACK_MODULES = ("functools", "itertools", "collections", "json", "argparse", "string")


@dataclass
class TextConfig:
    """Default sizes and hyper-parameters of each text model (about a minute on 2 cores)."""

    steps: int
    batch_size: int
    seq_len: int
    lr: float
    dims: Dict[str, int] = field(default_factory=dict)


DEFAULTS = {
    "lstm": TextConfig(
        steps=2000, batch_size=32, seq_len=64, lr=8e-3, dims=dict(embed=64, hidden=256, layers=1)
    ),
    "transformer": TextConfig(
        steps=1200,
        batch_size=32,
        seq_len=64,
        lr=3e-3,
        dims=dict(d_model=128, nhead=4, layers=2, ff=512),
    ),
}


# ---- the text -------------------------------------------------------------------------------


def load_text(max_chars: int = 330_000) -> Tuple[str, str]:
    """(text, description): the first max_chars characters of CPython's pydoc topics (the
    language reference as help() shows it); the docstrings of a few stdlib modules if
    pydoc_data is missing."""
    try:
        from pydoc_data.topics import topics

        text = "\n".join(topics[k] for k in topics)
        source = "pydoc_data.topics (the Python language reference topics shipped with CPython)"
    except ImportError:
        import importlib
        import inspect

        parts: List[str] = []
        for name in FALLBACK_MODULES:
            mod = importlib.import_module(name)
            for obj in [mod] + [getattr(mod, a) for a in sorted(dir(mod)) if not a.startswith("_")]:
                doc = inspect.getdoc(obj)
                if doc and doc not in parts:
                    parts.append(doc)
        text = "\n\n".join(parts)
        source = "docstrings of the stdlib modules " + ", ".join(FALLBACK_MODULES)
    text = text[:max_chars]
    return text, f"{source}: {len(text):,} chars"


class Vocab:
    """The characters of a text; those seen fewer than min_count times share the RARE symbol."""

    def __init__(self, text: str, min_count: int = 10) -> None:
        chars, counts = np.unique(np.array(list(text)), return_counts=True)
        kept = sorted(str(c) for c, n in zip(chars, counts) if n >= min_count)
        self.chars: List[str] = kept + [RARE]
        self.index = {c: i for i, c in enumerate(self.chars)}
        self.rare = len(self.chars) - 1

    def __len__(self) -> int:
        return len(self.chars)

    def encode(self, s: str) -> np.ndarray:
        return np.array([self.index.get(c, self.rare) for c in s], dtype=np.int64)

    def decode(self, ids: Sequence[int]) -> str:
        return "".join(self.chars[int(i)] for i in ids)


def unigram_entropy(ids: np.ndarray, vocab_size: int) -> float:
    """The entropy in nats/char of the character frequencies (what a model with no context
    reaches at best)."""
    p = np.bincount(ids, minlength=vocab_size) / len(ids)
    p = p[p > 0]
    return float(-(p * np.log(p)).sum())


# ---- the models -----------------------------------------------------------------------------


class CharLSTM(nn.Module):
    """Embedding -> LSTM -> Linear; forward(idx (N, T), state) -> (logits (N, T, V), state)."""

    def __init__(
        self, vocab_size: int, embed: int = 64, hidden: int = 256, layers: int = 1
    ) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab_size, embed)
        self.lstm = nn.LSTM(embed, hidden, num_layers=layers, batch_first=True)
        self.head = nn.Linear(hidden, vocab_size)

    def forward(self, idx, state=None):
        out, state = self.lstm(self.embed(idx), state)
        return self.head(out), state


def causal_mask(n: int, device="cpu"):
    """(n, n) float mask: 0 on and below the diagonal, -inf above (as
    torch.nn.Transformer.generate_square_subsequent_mask)."""
    m = np.triu(np.full((n, n), -np.inf, dtype=np.float32), k=1)
    return pe.tensor(m, device=device)


class CharTransformer(nn.Module):
    """Token + learned positional embedding -> pre-norm causal TransformerEncoder -> LayerNorm
    -> Linear; forward(idx (N, T), T <= block_size) -> logits (N, T, V)."""

    def __init__(
        self,
        vocab_size: int,
        block_size: int,
        d_model: int = 128,
        nhead: int = 4,
        layers: int = 2,
        ff: int = 512,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        self.block_size = block_size
        self.tok = nn.Embedding(vocab_size, d_model)
        self.pos = nn.Parameter(pe.zeros(1, block_size, d_model))
        nn.init.normal_(self.tok.weight, std=0.02)
        nn.init.normal_(self.pos, std=0.02)
        layer = nn.TransformerEncoderLayer(
            d_model,
            nhead,
            dim_feedforward=ff,
            dropout=dropout,
            activation="relu",  # torch's default; "gelu" is ~1.6x slower here (scalar erf)
            batch_first=True,
            norm_first=True,
        )
        self.encoder = nn.TransformerEncoder(layer, layers, enable_nested_tensor=False)
        self.norm = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, vocab_size)
        self._masks: Dict[Tuple[int, str], object] = {}

    def forward(self, idx):
        t = idx.shape[1]
        if t > self.block_size:
            raise ValueError(
                f"[CharTransformer] sequence length {t} > block_size {self.block_size}"
            )
        dev = str(idx.device)
        if (t, dev) not in self._masks:
            self._masks[(t, dev)] = causal_mask(t, idx.device)
        h = self.tok(idx) + self.pos[:, :t]
        h = self.encoder(h, mask=self._masks[(t, dev)], is_causal=True)
        return self.head(self.norm(h))


def build_text_model(name: str, vocab_size: int, seq_len: int, **dims) -> nn.Module:
    if name == "lstm":
        return CharLSTM(vocab_size, **dims)
    if name == "transformer":
        return CharTransformer(vocab_size, seq_len, **dims)
    raise ValueError(f"[demo] unknown text model {name!r}; choose one of {', '.join(TEXT_MODELS)}")


def _logits(model: nn.Module, idx, state=None):
    if isinstance(model, CharLSTM):
        return model(idx, state)
    return model(idx), None


# ---- evaluation and sampling ----------------------------------------------------------------


def evaluate_nats(model: nn.Module, ids: np.ndarray, seq_len: int, device="cpu") -> float:
    """Mean cross-entropy in nats/char over the non-overlapping windows of ids (each window
    predicted from its own start, as in training)."""
    n = (len(ids) - 1) // seq_len
    if n < 1:
        raise ValueError(f"[demo] held-out text is shorter than one window of {seq_len + 1}")
    x = ids[: n * seq_len].reshape(n, seq_len)
    y = ids[1 : n * seq_len + 1].reshape(n, seq_len)
    was_training = model.training
    model.eval()
    total = 0.0
    with pe.no_grad():
        for i in range(0, n, 64):
            xb = pe.tensor(x[i : i + 64], device=device)
            yb = pe.tensor(y[i : i + 64].reshape(-1), device=device)
            logits, _ = _logits(model, xb)
            loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), yb, reduction="sum")
            total += loss.item()
    model.train(was_training)
    return total / (n * seq_len)


def _softmax_np(z: np.ndarray) -> np.ndarray:
    z = z.astype(np.float64)
    z = np.exp(z - z.max())
    return z / z.sum()


def sample(
    model: nn.Module,
    vocab: Vocab,
    prompt: str,
    n_chars: int = 200,
    temperature: float = 0.8,
    rng: Optional[np.random.Generator] = None,
    device="cpu",
) -> str:
    """prompt followed by n_chars characters drawn one at a time from softmax(logits / T)."""
    if temperature <= 0:
        raise ValueError(f"[demo] temperature must be > 0, got {temperature}")
    rng = np.random.default_rng(0) if rng is None else rng
    ids = list(vocab.encode(prompt)) or [vocab.index.get("\n", 0)]
    was_training = model.training
    model.eval()
    out: List[int] = []
    with pe.no_grad():
        if isinstance(model, CharLSTM):
            logits, state = model(pe.tensor(np.array([ids], np.int64), device=device))
            for _ in range(n_chars):
                p = _softmax_np(logits[0, -1].cpu().numpy() / temperature)
                nxt = int(rng.choice(len(p), p=p))
                out.append(nxt)
                logits, state = model(pe.tensor(np.array([[nxt]], np.int64), device=device), state)
        else:
            ctx = ids[:]
            for _ in range(n_chars):
                window = np.array([ctx[-model.block_size :]], np.int64)
                logits = model(pe.tensor(window, device=device))
                p = _softmax_np(logits[0, -1].cpu().numpy() / temperature)
                nxt = int(rng.choice(len(p), p=p))
                out.append(nxt)
                ctx.append(nxt)
    model.train(was_training)
    return prompt + vocab.decode(out)


# ---- training -------------------------------------------------------------------------------


def run_text(
    model: str = "lstm",
    steps: Optional[int] = None,
    batch_size: Optional[int] = None,
    lr: Optional[float] = None,
    seed: int = 0,
    device: str = "cpu",
    progress: bool = True,
    seq_len: Optional[int] = None,
    dims: Optional[Dict[str, int]] = None,
    max_chars: int = 330_000,
    val_chars: int = 30_000,
    log_every: Optional[int] = None,
    prompt: str = "The ",
    sample_chars: int = 200,
    temperature: float = 0.8,
    log=print,
) -> Dict[str, object]:
    """Train a character model; returns {'losses', 'start_loss', 'end_loss', 'val_nats',
    'val_bits', 'unigram_nats', 'seconds', 'chars_per_s', 'sample', 'vocab', 'source', 'model',
    'steps'}. None means the model's default (DEFAULTS)."""
    if model not in TEXT_MODELS:
        raise ValueError(f"[demo] unknown text model {model!r}; choose one of {TEXT_MODELS}")
    cfg = DEFAULTS[model]
    steps = cfg.steps if steps is None else steps
    batch_size = cfg.batch_size if batch_size is None else batch_size
    seq_len = cfg.seq_len if seq_len is None else seq_len
    lr = cfg.lr if lr is None else lr
    dims = dict(cfg.dims, **(dims or {}))
    if steps < 1 or batch_size < 1 or seq_len < 1:
        raise ValueError("[demo] steps, batch size and sequence length must be >= 1")
    log_every = log_every or max(1, steps // 10)

    pe.manual_seed(seed)
    rng = np.random.default_rng(seed)
    text, source = load_text(max_chars)
    if len(text) < 2 * (val_chars + seq_len + 1):
        raise ValueError(f"[demo] the text is too short ({len(text)} chars) for this run")
    vocab = Vocab(text)
    ids = vocab.encode(text)
    train, val = ids[:-val_chars], ids[-val_chars:]
    unigram = unigram_entropy(train, len(vocab))
    log(
        f"text: {source}; {len(train):,} training / {len(val):,} held-out chars; "
        f"vocabulary {len(vocab)} (rare chars -> {RARE!r}); unigram entropy {unigram:.3f} "
        f"nats/char, log(V) = {math.log(len(vocab)):.3f}"
    )
    net = build_text_model(model, len(vocab), seq_len, **dims).to(device)
    n_params = sum(int(np.prod(p.shape)) for p in net.parameters())
    log(f"model: {model} {dims}, {n_params:,} parameters; {steps} steps of {batch_size}x{seq_len}")

    opt = pe.optim.AdamW(net.parameters(), lr=lr, weight_decay=1e-2)
    sched = pe.optim.lr_scheduler.OneCycleLR(opt, max_lr=lr, total_steps=steps, pct_start=0.1)
    bar = None
    if progress:
        try:
            from tqdm.auto import tqdm

            bar = tqdm(total=steps, unit="step", desc=f"{model} chars", dynamic_ncols=True)
            log = bar.write
        except ImportError:
            log("[demo] tqdm is not installed (pip install 'pyengine[demo]'): no progress bar")

    offsets = np.arange(seq_len + 1)
    losses: List[float] = []
    t0 = time.perf_counter()
    for step in range(1, steps + 1):
        starts = rng.integers(0, len(train) - seq_len - 1, size=batch_size)
        win = train[starts[:, None] + offsets]
        xb = pe.tensor(win[:, :-1], device=device)
        yb = pe.tensor(win[:, 1:].reshape(-1), device=device)
        logits, _ = _logits(net, xb)
        loss = F.cross_entropy(logits.reshape(-1, logits.shape[-1]), yb)
        opt.zero_grad()
        loss.backward()
        nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()
        sched.step()
        losses.append(loss.item())
        rate = step * batch_size * seq_len / max(time.perf_counter() - t0, 1e-9)
        if bar is not None:
            bar.update(1)
            bar.set_postfix(
                loss=f"{np.mean(losses[-10:]):.3f}", chars_s=f"{rate:.0f}", refresh=False
            )
        if step % log_every == 0 or step == 1 or step == steps:
            log(
                f"step {step:5d}/{steps}  loss {np.mean(losses[-log_every:]):.4f} nats/char  "
                f"({rate:.0f} chars/s)"
            )
    seconds = time.perf_counter() - t0
    if bar is not None:
        bar.close()
    val_nats = evaluate_nats(net, val, seq_len, device)
    text_out = sample(net, vocab, prompt, sample_chars, temperature, rng, device)
    k = max(1, min(10, steps // 5))
    return {
        "losses": losses,
        "start_loss": float(np.mean(losses[:3])),  # before the warm-up has moved much
        "end_loss": float(np.mean(losses[-k:])),
        "val_nats": val_nats,
        "val_bits": val_nats / math.log(2),
        "unigram_nats": unigram,
        "seconds": seconds,
        "chars_per_s": steps * batch_size * seq_len / max(seconds, 1e-9),
        "sample": text_out,
        "vocab": vocab,
        "source": source,
        "model": net,
        "steps": steps,
    }


def main_text(args) -> int:
    """The CLI: python -m pyengine demo --model lstm|transformer [--steps N] ..."""
    try:
        res = run_text(
            model=args.model,
            steps=getattr(args, "steps", None),
            batch_size=args.batch_size,
            lr=args.lr,
            seed=args.seed,
            device=args.device,
            progress=not args.no_progress,
        )
    except (ValueError, NotImplementedError) as e:
        print(e)
        return 1
    log2 = math.log(2)
    nt = pe.get_num_threads()
    print(
        f"trained {args.model} for {res['steps']} steps in {res['seconds']:.1f} s "
        f"({res['chars_per_s']:.0f} chars/s, {nt} thread{'s' if nt != 1 else ''}); "
        f"loss {res['start_loss']:.3f} -> {res['end_loss']:.3f} nats/char "
        f"(unigram entropy {res['unigram_nats']:.3f})"
    )
    print(
        f"held-out loss: {res['val_nats']:.3f} nats/char = {res['val_bits']:.3f} bits/char "
        f"(unigram {res['unigram_nats'] / log2:.3f} bits/char)"
    )
    print("sample (temperature 0.8):")
    print(res["sample"])
    return 0
