"""The layer API on CUDA: Module.to('cuda'), Linear/Dropout/Embedding, the losses, every
optimizer, clip_grad_norm_, DataLoader and save/load, each compared with the same computation
on the CPU. Every test is marked `cuda` and skips with the reason where no GPU is present."""

from __future__ import annotations

import numpy as np
import pytest

import pyengine as pe
import pyengine.functional as F
from pyengine import nn, optim
from pyengine.backend import cuda as pcuda

pytestmark = pytest.mark.cuda

AVAILABLE = pcuda.is_available()
REASON = pcuda.unavailable_reason()


@pytest.fixture(autouse=True)
def _gpu():
    if not AVAILABLE:
        pytest.skip(f"no CUDA GPU: {REASON}")


def _host(t):
    return t.detach().cpu().numpy()


def _mlp(seed=0):
    pe.manual_seed(seed)
    return nn.Sequential(nn.Linear(6, 16), nn.Dropout(0.0), nn.Linear(16, 3))


def test_module_to_cuda_keeps_parameters():
    net = _mlp()
    params = [id(p) for p in net.parameters()]
    net.register_buffer("count", pe.tensor([1]))
    assert net.to("cuda") is net
    assert [id(p) for p in net.parameters()] == params
    assert all(p.device == "cuda" for p in net.parameters()) and net.count.device == "cuda"
    net.cpu()
    assert all(p.device == "cpu" for p in net.parameters())


@pytest.mark.parametrize("dtype", [pe.float32, pe.float64])
def test_linear_forward_backward_match_cpu(dtype):
    cpu = _mlp().to(dtype)
    gpu = _mlp().to(dtype).cuda()
    x = pe.randn(5, 6, dtype=dtype)
    for net, xx in ((cpu, x), (gpu, x.cuda())):
        (net(xx) ** 2).sum().backward()
    tol = 1e-4 if dtype == pe.float32 else 1e-10
    np.testing.assert_allclose(_host(gpu(x.cuda())), _host(cpu(x)), rtol=tol, atol=tol)
    for a, b in zip(cpu.parameters(), gpu.parameters()):
        assert b.grad.device == "cuda"
        np.testing.assert_allclose(_host(b.grad), _host(a.grad), rtol=tol, atol=tol)


@pytest.mark.parametrize(
    "cls, hp",
    [
        (optim.SGD, dict(lr=0.1, momentum=0.9, nesterov=True, weight_decay=0.01)),
        (optim.Adam, dict(lr=0.01, amsgrad=True, weight_decay=0.1)),
        (optim.AdamW, dict(lr=0.01)),
        (optim.RMSprop, dict(lr=0.01, momentum=0.5, centered=True)),
        (optim.Adagrad, dict(lr=0.1, lr_decay=0.01, initial_accumulator_value=0.1)),
    ],
)
def test_optimizers_match_cpu(cls, hp):
    rng = np.random.default_rng(0)
    p0, A = rng.normal(size=(4, 5)), rng.uniform(0.5, 2, (4, 5))
    out = []
    for dev in ("cpu", "cuda"):
        p = nn.Parameter(pe.tensor(p0, device=dev))
        a = pe.tensor(A, device=dev)
        opt = cls([p], **hp)
        for _ in range(5):
            opt.zero_grad()
            (0.5 * a * p * p).sum().backward()
            opt.step()
        assert all(v.device == dev for v in opt.state[p].values() if isinstance(v, pe.Tensor))
        out.append(_host(p))
    np.testing.assert_allclose(out[1], out[0], rtol=1e-10, atol=1e-12)


def test_state_dict_across_devices():
    cpu = _mlp()
    gpu = _mlp(1).cuda()
    gpu.load_state_dict(cpu.state_dict())
    x = pe.randn(3, 6)
    np.testing.assert_allclose(_host(gpu(x.cuda())), _host(cpu(x)), rtol=1e-5, atol=1e-6)
    back = _mlp(2)
    back.load_state_dict(gpu.state_dict())
    np.testing.assert_allclose(_host(back(x)), _host(cpu(x)), rtol=1e-5, atol=1e-6)


def test_dropout_embedding_losses_on_cuda():
    pe.manual_seed(0)
    a = F.dropout(pe.ones(100, 100), 0.3)
    pe.manual_seed(0)
    b = F.dropout(pe.ones(100, 100, device="cuda"), 0.3)
    np.testing.assert_array_equal(_host(b), _host(a))  # one seed, one mask on every device
    w = nn.Parameter(pe.randn(7, 3, device="cuda"))
    idx = pe.tensor([[1, 2, 1], [6, 0, 1]], device="cuda")
    out = F.embedding(idx, w, padding_idx=0)
    out.sum().backward()
    g = _host(w.grad)
    assert g[1].tolist() == [3.0] * 3 and g[0].tolist() == [0.0] * 3
    x, y = pe.randn(4, 3), pe.rand(4, 3)
    for fn in (F.mse_loss, F.l1_loss, F.binary_cross_entropy_with_logits):
        np.testing.assert_allclose(_host(fn(x.cuda(), y.cuda())), _host(fn(x, y)), rtol=1e-5)
    p = x.sigmoid()
    np.testing.assert_allclose(
        _host(F.binary_cross_entropy(p.cuda(), y.cuda())),
        _host(F.binary_cross_entropy(p, y)),
        rtol=1e-5,
    )


def test_clip_and_data_and_save_load(tmp_path):
    p = nn.Parameter(pe.zeros(3, device="cuda"))
    p.grad = pe.tensor([3.0, 4.0, 0.0], device="cuda")
    assert nn.utils.clip_grad_norm_([p], 1.0).item() == pytest.approx(5.0)
    np.testing.assert_allclose(_host(p.grad), [0.6, 0.8, 0.0], rtol=1e-5)
    ds = pe.data.TensorDataset(pe.arange(10, device="cuda"), pe.randn(10, 2, device="cuda"))
    batches = list(pe.data.DataLoader(ds, batch_size=4, shuffle=True, seed=0))
    assert all(b[0].device == "cuda" for b in batches)
    assert sorted(np.concatenate([_host(b[0]) for b in batches]).tolist()) == list(range(10))
    t = pe.randn(3, 4, device="cuda")
    pe.save({"t": t}, tmp_path / "t.safetensors")
    back = pe.load(tmp_path / "t.safetensors", map_location="cuda")
    assert back["t"].device == "cuda"
    np.testing.assert_array_equal(_host(back["t"]), _host(t))
