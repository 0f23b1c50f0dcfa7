"""nn.MultiheadAttention, nn.TransformerEncoderLayer, nn.TransformerEncoder.

Against torch (skipped when torch is not installed): the same state dict (converted to NumPy)
gives the same outputs, attention weights and gradients, with every mask kind; plus checks
that need no torch (shapes, seeded dropout, gradcheck in float64, errors).
"""

from __future__ import annotations

import numpy as np
import pytest
from helpers import assert_close

import pyengine as pe

nn = pe.nn


def _np_state(tmod):
    return {k: v.detach().numpy().copy() for k, v in tmod.state_dict().items()}


def _torch():
    return pytest.importorskip("torch")


def _pair_mha(torch, E=16, H=4, **kw):
    torch.manual_seed(0)
    tm = torch.nn.MultiheadAttention(E, H, **kw).double()
    kw.pop("dtype", None)
    pm = nn.MultiheadAttention(E, H, dtype=pe.float64, **kw)
    assert list(pm.state_dict().keys()) == list(tm.state_dict().keys())
    for (k, a), (_k2, b) in zip(pm.state_dict().items(), tm.state_dict().items()):
        assert tuple(a.shape) == tuple(b.shape), k
    pm.load_state_dict(_np_state(tm))
    # biases are zero at init: randomize everything so they are tested too
    with torch.no_grad():
        for p in tm.parameters():
            p.copy_(torch.randn_like(p) * 0.3)
    pm.load_state_dict(_np_state(tm))
    return tm, pm


def _compare(torch, tm, pm, q, k, v, tol=1e-10, **kw):
    tin = [torch.tensor(a, requires_grad=True) for a in (q, k, v)]
    pin = [pe.tensor(a.copy(), requires_grad=True) for a in (q, k, v)]
    tkw = {n: (torch.tensor(a) if isinstance(a, np.ndarray) else a) for n, a in kw.items()}
    pkw = {n: (pe.tensor(a) if isinstance(a, np.ndarray) else a) for n, a in kw.items()}
    to, tw = tm(*tin, **tkw)
    po, pw = pm(*pin, **pkw)
    assert_close(po, to.detach().numpy(), pe.float64, rtol=tol, atol=tol, what="output")
    if tw is None:
        assert pw is None
    else:
        assert_close(pw, tw.detach().numpy(), pe.float64, rtol=tol, atol=tol, what="weights")
    g = np.random.default_rng(0).standard_normal(to.shape)
    (to * torch.tensor(g)).sum().backward()
    (po * pe.tensor(g)).sum().backward()
    seen = set()
    for a, b in zip(pin, tin):
        if id(a) in seen:
            continue
        seen.add(id(a))
        assert_close(a.grad, b.grad.numpy(), pe.float64, rtol=1e-8, atol=1e-8, what="input grad")
    tparams = dict(tm.named_parameters())
    for name, p in pm.named_parameters():
        assert_close(
            p.grad, tparams[name].grad.numpy(), pe.float64, rtol=1e-8, atol=1e-8, what=name
        )


@pytest.mark.parametrize("need_weights", [True, False])
@pytest.mark.parametrize("batch_first", [False, True])
def test_mha_self_attention(need_weights, batch_first):
    torch = _torch()
    tm, pm = _pair_mha(torch, batch_first=batch_first)
    x = np.random.default_rng(1).standard_normal((3, 7, 16) if batch_first else (7, 3, 16))
    _compare(torch, tm, pm, x, x, x, need_weights=need_weights)


@pytest.mark.parametrize("need_weights", [True, False])
def test_mha_cross_attention_kdim_vdim(need_weights):
    torch = _torch()
    tm, pm = _pair_mha(torch, E=12, H=3, kdim=5, vdim=7)
    rng = np.random.default_rng(2)
    q, k, v = (
        rng.standard_normal((4, 2, 12)),
        rng.standard_normal((9, 2, 5)),
        rng.standard_normal((9, 2, 7)),
    )
    _compare(torch, tm, pm, q, k, v, need_weights=need_weights)


@pytest.mark.parametrize("average", [True, False])
def test_mha_weights_per_head(average):
    torch = _torch()
    tm, pm = _pair_mha(torch, bias=False)
    rng = np.random.default_rng(3)
    q, k = rng.standard_normal((5, 2, 16)), rng.standard_normal((8, 2, 16))
    _compare(torch, tm, pm, q, k, k, average_attn_weights=average)


def test_mha_unbatched():
    torch = _torch()
    tm, pm = _pair_mha(torch)
    rng = np.random.default_rng(4)
    q, k = rng.standard_normal((5, 16)), rng.standard_normal((6, 16))
    kpm = np.array([False, False, True, False, True, False])
    for nw in (True, False):
        _compare(torch, tm, pm, q, k, k, need_weights=nw, key_padding_mask=kpm)


def _masks(rng, N, H, L, S):
    am_bool = rng.random((L, S)) < 0.3
    am_bool[:, 0] = False  # no fully masked row (torch gives NaN there)
    am_float = rng.standard_normal((N * H, L, S))
    kpm = rng.random((N, S)) < 0.3
    kpm[:, 0] = False
    kpm_float = np.where(kpm, -np.inf, 0.0)
    return am_bool, am_float, kpm, kpm_float


@pytest.mark.filterwarnings("ignore:Support for mismatched key_padding_mask")
@pytest.mark.parametrize("need_weights", [True, False])
@pytest.mark.parametrize(
    "which", ["am_bool", "am_float", "kpm", "kpm_float", "am_bool+kpm", "am_float+kpm"]
)
def test_mha_masks(need_weights, which):
    torch = _torch()
    tm, pm = _pair_mha(torch)
    rng = np.random.default_rng(5)
    N, H, L, S = 3, 4, 6, 9
    am_bool, am_float, kpm, kpm_float = _masks(rng, N, H, L, S)
    kw = {}
    for part in which.split("+"):
        kw.update(
            {
                "am_bool": {"attn_mask": am_bool},
                "am_float": {"attn_mask": am_float},
                "kpm": {"key_padding_mask": kpm},
                "kpm_float": {"key_padding_mask": kpm_float},
            }[part]
        )
    q, k = rng.standard_normal((L, N, 16)), rng.standard_normal((S, N, 16))
    _compare(torch, tm, pm, q, k, k, need_weights=need_weights, **kw)


def test_mha_causal_hint():
    torch = _torch()
    tm, pm = _pair_mha(torch)
    L = 7
    x = np.random.default_rng(6).standard_normal((L, 2, 16))
    causal = np.triu(np.ones((L, L), dtype=bool), 1)  # True = masked out (MHA's convention)
    for nw in (True, False):
        _compare(torch, tm, pm, x, x, x, need_weights=nw, attn_mask=causal, is_causal=True)


def test_mha_float32_long():
    """Many query and key blocks through the fused kernel, float32."""
    torch = _torch()
    torch.manual_seed(0)
    tm = torch.nn.MultiheadAttention(64, 4, batch_first=True)
    pm = nn.MultiheadAttention(64, 4, batch_first=True)
    pm.load_state_dict(_np_state(tm))
    x = np.random.default_rng(7).standard_normal((2, 300, 64)).astype(np.float32)
    to, _ = tm(*(torch.tensor(x),) * 3, need_weights=False)
    xt = pe.tensor(x)
    po, _ = pm(xt, xt, xt, need_weights=False)
    assert_close(po, to.detach().numpy(), pe.float32, rtol=1e-4, atol=1e-5)


def _pair_layer(torch, **kw):
    torch.manual_seed(0)
    tl = torch.nn.TransformerEncoderLayer(16, 4, dim_feedforward=24, dropout=0.1, **kw).double()
    pl = nn.TransformerEncoderLayer(16, 4, dim_feedforward=24, dropout=0.1, dtype=pe.float64, **kw)
    assert list(pl.state_dict().keys()) == list(tl.state_dict().keys())
    with torch.no_grad():
        for p in tl.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    pl.load_state_dict(_np_state(tl))
    tl.eval()
    pl.eval()
    return tl, pl


def _compare_layer(torch, tl, pl, x, **kw):
    tx = torch.tensor(x, requires_grad=True)
    px = pe.tensor(x.copy(), requires_grad=True)
    tkw = {n: (torch.tensor(a) if isinstance(a, np.ndarray) else a) for n, a in kw.items()}
    pkw = {n: (pe.tensor(a) if isinstance(a, np.ndarray) else a) for n, a in kw.items()}
    to, po = tl(tx, **tkw), pl(px, **pkw)
    assert_close(po, to.detach().numpy(), pe.float64, rtol=1e-9, atol=1e-9, what="output")
    g = np.random.default_rng(0).standard_normal(to.shape)
    (to * torch.tensor(g)).sum().backward()
    (po * pe.tensor(g)).sum().backward()
    assert_close(px.grad, tx.grad.numpy(), pe.float64, rtol=1e-8, atol=1e-8, what="input grad")
    tparams = dict(tl.named_parameters())
    for name, p in pl.named_parameters():
        assert_close(
            p.grad, tparams[name].grad.numpy(), pe.float64, rtol=1e-8, atol=1e-8, what=name
        )


@pytest.mark.parametrize("activation", ["relu", "gelu"])
@pytest.mark.parametrize("norm_first", [False, True])
@pytest.mark.parametrize("batch_first", [False, True])
def test_encoder_layer(activation, norm_first, batch_first):
    torch = _torch()
    tl, pl = _pair_layer(
        torch, activation=activation, norm_first=norm_first, batch_first=batch_first
    )
    x = np.random.default_rng(8).standard_normal((2, 9, 16) if batch_first else (9, 2, 16))
    _compare_layer(torch, tl, pl, x)


def test_encoder_layer_masks():
    torch = _torch()
    tl, pl = _pair_layer(torch)
    rng = np.random.default_rng(9)
    L, N = 8, 3
    x = rng.standard_normal((L, N, 16))
    kpm = rng.random((N, L)) < 0.3
    kpm[:, 0] = False
    causal = np.triu(np.ones((L, L), dtype=bool), 1)
    _compare_layer(torch, tl, pl, x, src_key_padding_mask=kpm)
    _compare_layer(torch, tl, pl, x, src_mask=causal, is_causal=True)
    _compare_layer(torch, tl, pl, x, src_mask=np.where(causal, -np.inf, 0.0))


def test_encoder_stack():
    torch = _torch()
    torch.manual_seed(0)
    tl = torch.nn.TransformerEncoderLayer(16, 2, dim_feedforward=32, dropout=0.0).double()
    te = torch.nn.TransformerEncoder(
        tl, 3, norm=torch.nn.LayerNorm(16).double(), enable_nested_tensor=False
    )
    pl = nn.TransformerEncoderLayer(16, 2, dim_feedforward=32, dropout=0.0, dtype=pe.float64)
    pe_enc = nn.TransformerEncoder(pl, 3, norm=nn.LayerNorm(16, dtype=pe.float64))
    assert list(pe_enc.state_dict().keys()) == list(te.state_dict().keys())
    with torch.no_grad():
        for p in te.parameters():
            p.add_(torch.randn_like(p) * 0.1)
    pe_enc.load_state_dict(_np_state(te))
    x = np.random.default_rng(10).standard_normal((6, 2, 16))
    _compare_layer(torch, te, pe_enc, x)


# ----------------------------------------------------------------- no torch needed


def test_mha_gradcheck_float64():
    pe.manual_seed(0)
    m = nn.MultiheadAttention(6, 2, dtype=pe.float64)
    x = pe.randn(4, 2, 6, dtype=pe.float64, requires_grad=True)
    for nw in (True, False):
        assert pe.autograd.gradcheck(lambda t, nw=nw: m(t, t, t, need_weights=nw)[0], [x])


def test_mha_paths_agree_and_shapes():
    pe.manual_seed(1)
    m = nn.MultiheadAttention(8, 2, batch_first=True)
    q, k = pe.randn(3, 5, 8), pe.randn(3, 7, 8)
    a, w = m(q, k, k)
    b, none = m(q, k, k, need_weights=False)
    assert a.shape == (3, 5, 8) and w.shape == (3, 5, 7) and none is None
    assert_close(a.detach(), b.detach().numpy(), pe.float32, rtol=1e-5, atol=1e-6)
    _, wh = m(q, k, k, average_attn_weights=False)
    assert wh.shape == (3, 2, 5, 7)
    np.testing.assert_allclose(wh.detach().numpy().sum(-1), 1.0, rtol=1e-5)


def test_encoder_layer_dropout_seeded():
    layer = nn.TransformerEncoderLayer(8, 2, dim_feedforward=16, dropout=0.3)
    x = pe.randn(5, 2, 8)
    pe.manual_seed(3)
    a = layer(x).detach().numpy()
    pe.manual_seed(3)
    b = layer(x).detach().numpy()
    np.testing.assert_array_equal(a, b)
    layer.eval()
    c = layer(x).detach().numpy()
    assert not np.allclose(a, c)


ERRORS = [
    (lambda: nn.MultiheadAttention(10, 3), ValueError, r"^\[MultiheadAttention\] "),
    (
        lambda: nn.MultiheadAttention(8, 2, add_bias_kv=True),
        NotImplementedError,
        r"^\[MultiheadAttention\] ",
    ),
    (
        lambda: nn.MultiheadAttention(8, 2)(
            pe.randn(3, 2, 6), pe.randn(3, 2, 8), pe.randn(3, 2, 8)
        ),
        ValueError,
        r"^\[MultiheadAttention\] ",
    ),
    (
        lambda: nn.MultiheadAttention(8, 2)(*(pe.randn(3, 2, 8),) * 3, attn_mask=pe.ones(4, 4)),
        ValueError,
        r"^\[MultiheadAttention\] ",
    ),
    (
        lambda: nn.MultiheadAttention(8, 2)(*(pe.randn(3, 2, 8),) * 3, is_causal=True),
        RuntimeError,
        r"^\[MultiheadAttention\] ",
    ),
    (
        lambda: nn.MultiheadAttention(8, 2)(
            *(pe.randn(3, 2, 8),) * 3, key_padding_mask=pe.ones(2, 3, dtype=pe.int64)
        ),
        TypeError,
        r"^\[MultiheadAttention\] ",
    ),
    (
        lambda: nn.TransformerEncoderLayer(8, 2, activation="tanh"),
        ValueError,
        r"^\[TransformerEncoderLayer\] ",
    ),
]


@pytest.mark.parametrize("i", range(len(ERRORS)))
def test_errors(i):
    call, exc, msg = ERRORS[i]
    with pytest.raises(exc, match=msg):
        call()
