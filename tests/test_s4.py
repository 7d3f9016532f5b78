"""S4 / S4D layers: HiPPO inits, discretisations, the FFT path vs the export path (real
arithmetic + conv1d), TorchScript/ONNX parity, parameter groups, gradient reversal, and the
engine's generic hooks (auxiliary losses, parameter groups)."""

from __future__ import annotations

import json
import math

import lightning as L
import numpy as np
import pytest
import torch
from torch import nn
from torch.utils.data import DataLoader

from toolkit.competitions.eeg2025.models import HarnessModel, build_backbone
from toolkit.competitions.eeg2025.s4 import (
    S4Net,
    SSMKernel,
    dann_lambda,
    diagonal_init,
    direct_conv,
    fft_conv,
    hippo_legs,
    legs_dplr,
)
from toolkit.competitions.protocol import Metric
from toolkit.config.schema import TrainConfig
from toolkit.engine.module import TaskModule
from toolkit.errors import ExportError, RecipeError
from toolkit.export.models import run_onnx, run_torchscript, to_onnx, to_torchscript

KERNELS = [
    ("diag", "lin", "zoh"),
    ("diag", "inv", "bilinear"),
    ("diag", "legs", "zoh"),
    ("dplr", "legs", "bilinear"),
]


def test_hippo_legs_is_the_published_matrix():
    A, B = hippo_legs(4)
    assert A[2, 1] == pytest.approx(-math.sqrt(5) * math.sqrt(3))
    assert torch.equal(torch.diagonal(A), -torch.arange(1.0, 5.0, dtype=torch.float64))
    assert torch.equal(torch.triu(A, 1), torch.zeros(4, 4, dtype=torch.float64))
    assert torch.allclose(B, torch.sqrt(2 * torch.arange(4.0, dtype=torch.float64) + 1))


def test_legs_dplr_is_legs_in_the_normal_eigenbasis():
    n = 8
    lam, P, B = legs_dplr(n)
    assert lam.shape == (n // 2,) and torch.allclose(lam.real, torch.full((n // 2,), -0.5).double())
    assert (lam.imag > 0).all()
    # Lambda and its conjugates are the eigenvalues of LegS's normal part, A + P P^T.
    A, B_real = hippo_legs(n)
    P_real = torch.sqrt(torch.arange(n).double() + 0.5)
    w = torch.linalg.eigvals(A + torch.outer(P_real, P_real))
    full = torch.cat([lam, lam.conj()])
    assert torch.allclose(torch.sort(w.imag).values, torch.sort(full.imag).values, atol=1e-8)
    # Half of a unitary change of basis of a real vector keeps half of its energy.
    assert float((P.abs() ** 2).sum()) == pytest.approx(0.5 * float((P_real**2).sum()))
    assert float((B.abs() ** 2).sum()) == pytest.approx(0.5 * float((B_real**2).sum()))


def test_s4d_lin_and_inv_initialisations():
    lam, B = diagonal_init("lin", 8)
    assert torch.allclose(lam.imag, math.pi * torch.arange(4).double())
    lam, _ = diagonal_init("inv", 8)
    k = torch.arange(4).double()
    assert torch.allclose(lam.imag, (8 / math.pi) * (8 / (2 * k + 1) - 1))
    assert torch.equal(B, torch.ones(4, dtype=torch.complex128))


@pytest.mark.parametrize("kernel,init,disc", KERNELS)
@pytest.mark.parametrize("channels", [1, 2])
def test_real_arithmetic_kernel_matches_the_complex_one(kernel, init, disc, channels):
    torch.manual_seed(0)
    k = SSMKernel(8, 16, kernel, init, disc, channels, 1e-3, 1e-1)
    with torch.no_grad():
        complex_k, real_k = k(200), k(200, real=True)
    assert complex_k.shape == (channels, 8, 200)
    scale = float(complex_k.abs().max())
    assert scale > 0.05
    assert float((complex_k - real_k).abs().max()) < 1e-4 * scale


def test_dplr_kernel_matches_a_dense_bilinear_recurrence():
    """C dA^l dB with dA = (I - dt/2 A)^-1 (I + dt/2 A), solved densely: checks the Woodbury
    form the layer uses."""
    torch.manual_seed(1)
    k = SSMKernel(3, 8, "dplr", "legs", "bilinear", 1, 1e-2, 1e-1).double()
    with torch.no_grad():
        got = k(20)[0]
        lam = torch.complex(-torch.exp(k.A_re_log), k.A_im)
        P, B, C = (torch.view_as_complex(t.contiguous()) for t in (k.P, k.B, k.C[0]))
        for h in range(3):
            dt = torch.exp(k.log_dt[h])
            A = torch.diag(lam[h]) - torch.outer(P[h], P[h].conj())
            eye = torch.eye(4, dtype=A.dtype)
            dA = torch.linalg.solve(eye - dt / 2 * A, eye + dt / 2 * A)
            x = torch.linalg.solve(eye - dt / 2 * A, dt * B[h])
            for step in range(20):
                assert float(2 * (C[h] @ x).real) == pytest.approx(float(got[h, step]), abs=1e-9)
                x = dA @ x


def test_fft_conv_is_the_causal_and_bidirectional_sum():
    torch.manual_seed(2)
    L = 7
    u, k = torch.randn(1, 2, L), torch.randn(2, 2, L)
    y_causal, y_bidir = fft_conv(u, k[:1]), fft_conv(u, k)
    for h in range(2):
        for t in range(L):
            past = sum(k[0, h, s] * u[0, h, t - s] for s in range(t + 1))
            future = sum(k[1, h, s - 1] * u[0, h, t + s] for s in range(1, L - t))
            assert float(y_causal[0, h, t]) == pytest.approx(float(past), abs=1e-5)
            assert float(y_bidir[0, h, t]) == pytest.approx(float(past + future), abs=1e-5)


@pytest.mark.parametrize("channels", [1, 2])
def test_direct_conv_matches_fft_conv(channels):
    torch.manual_seed(3)
    u, k = torch.randn(4, 6, 200), torch.randn(channels, 6, 200) * 0.1
    fft, direct = fft_conv(u, k), direct_conv(u, k)
    assert float((fft - direct).abs().max()) < 1e-4
    if channels == 1:  # causal: the past does not see a change in the future
        u2 = u.clone()
        u2[..., 150:] += 1.0
        assert torch.allclose(direct_conv(u2, k)[..., :150], direct[..., :150], atol=1e-5)


def _tiny(name: str = "S4", **kwargs) -> HarnessModel:
    torch.manual_seed(0)
    args = {"d_model": 8, "n_layers": 2, "d_state": 8, "n_heads": 2, **kwargs}
    return HarnessModel(build_backbone(name, args, 200), 0.5, 0.2).eval()


def test_export_path_agrees_with_the_fft_path_for_a_whole_model():
    model = _tiny(bidirectional=True)
    x = torch.randn(3, 129, 200) * 1e-5
    with torch.no_grad():
        fft = model(x)
        for layer in model.backbone.layers:
            layer.export_path = True
        direct = model(x)
    assert float((fft - direct).abs().max()) < 1e-5


def traced_code(path) -> str:
    """The TorchScript code of a saved module and all its submodules."""
    loaded = torch.jit.load(str(path))
    return "\n".join(m.code for m in loaded.modules() if hasattr(m, "forward"))


@pytest.mark.parametrize("name", ["S4", "S4D"])
def test_torchscript_and_onnx_match_eager_without_fft(tmp_path, name):
    model = _tiny(name, bidirectional=name == "S4")
    x = torch.randn(4, 129, 200) * 1e-5
    with torch.inference_mode():
        expected = model(x).numpy()
    ts = to_torchscript(model, x, tmp_path / "model.ts")
    graph = traced_code(ts)
    assert "_convolution" in graph and "fft" not in graph and "complex" not in graph
    assert "einsum" not in graph  # the kernel was computed once, on entering eval mode
    assert np.abs(run_torchscript(ts, x.numpy()) - expected).max() < 1e-5
    if name == "S4D":  # one ONNX export is enough for the suite's time (S4's is in the pipeline)
        onnx = to_onnx(model, x, tmp_path / "model.onnx")
        single = run_onnx(onnx, x[:1].numpy())
        assert np.abs(run_onnx(onnx, x.numpy()) - expected).max() < 1e-5
        assert np.abs(single - expected[:1]).max() < 1e-5


def test_eval_mode_freezes_the_kernel_until_training_or_new_weights():
    model = _tiny("S4D")
    layer = model.backbone.layers[0]
    frozen = layer.frozen_weight
    assert frozen is not None and frozen.shape == (8, 1, 200)
    assert torch.allclose(frozen[:, 0].flip(-1), layer.kernel(200).detach()[0], atol=1e-5)
    assert "frozen_weight" not in "".join(model.state_dict())
    state = {k: v + 0.01 if k.endswith("log_dt") else v for k, v in model.state_dict().items()}
    model.load_state_dict(state)
    assert layer.frozen_weight is None  # stale after new weights: computed in the graph again
    x = torch.randn(2, 129, 200) * 1e-5
    with torch.no_grad():
        fft = model(x)
        layer.export_path = True
        direct = model(x)
        model.eval()  # freezes the new weights' kernel
        assert not torch.equal(layer.frozen_weight, frozen)
        assert torch.allclose(model(x), fft, atol=1e-6) and torch.allclose(direct, fft, atol=1e-6)
        short = torch.randn(2, 129, 120) * 1e-5  # another length: the kernel is computed anew
        layer_out = model(short)
        layer.export_path = False
        assert torch.allclose(layer_out, model(short), atol=1e-6)
    model.train()
    assert layer.frozen_weight is None


def test_ssm_parameters_get_their_own_group():
    model = _tiny("S4", ssm_lr=1e-3)
    default, ssm = model.param_groups(lr=5e-3, weight_decay=0.01)
    assert ssm["lr"] == 1e-3 and ssm["weight_decay"] == 0.0
    assert default["lr"] == 5e-3 and default["weight_decay"] == 0.01
    names = {id(p): n for n, p in model.named_parameters()}
    ssm_names = {names[id(p)].rsplit(".", 1)[-1] for p in ssm["params"]}
    assert ssm_names == {"log_dt", "A_re_log", "A_im", "B", "P"}
    every = [id(p) for g in (default, ssm) for p in g["params"]]
    assert sorted(every) == sorted(names) and len(set(every)) == len(every)


def test_gradient_reversal_and_dann_schedule():
    assert dann_lambda(0.0) == 0.0
    assert dann_lambda(0.5) == pytest.approx(2 / (1 + math.exp(-5)) - 1)
    assert dann_lambda(1.0) > 0.9999
    net = S4Net(d_model=8, n_layers=1, d_state=8, n_heads=2, n_domains=3, dropout=0.0).train()
    x = torch.randn(4, 129, 200)
    net(x)
    losses = net.auxiliary_losses({"domain": torch.tensor([0, 1, 2, 1])}, progress=1.0)
    (head_weight,) = [p for n, p in net.domain_head.named_parameters() if n == "2.weight"]
    losses["domain"].backward()
    # The head learns to classify (ordinary gradient); the encoder is pushed the other way.
    features_grad = net.head_norm.weight.grad
    assert head_weight.grad is not None and features_grad is not None
    net.zero_grad()
    net(x)
    reference = net.domain_head(net._features)
    nn.functional.cross_entropy(reference, torch.tensor([0, 1, 2, 1])).backward()
    ratio = net.head_norm.weight.grad / features_grad
    assert torch.allclose(ratio, torch.full_like(ratio, -1 / dann_lambda(1.0)), rtol=1e-3)


def test_eval_forward_keeps_no_features_and_exports_leave_the_head_out(tmp_path):
    model = HarnessModel(S4Net(d_model=8, n_layers=1, d_state=8, n_heads=2, n_domains=4), 0, 1)
    model.eval()
    x = torch.randn(2, 129, 200)
    model(x)
    assert model.backbone._features is None
    code = traced_code(to_torchscript(model, x, tmp_path / "m.ts"))
    assert "domain_head" not in code and "head_norm" in code


def test_mixed_precision_step_is_finite():
    net = S4Net(d_model=8, n_layers=1, d_state=8, n_heads=2)
    x, y = torch.randn(4, 129, 200), torch.randn(4, 1)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = nn.functional.mse_loss(net(x).float(), y)
    loss.backward()
    assert torch.isfinite(loss) and all(
        torch.isfinite(p.grad).all() for p in net.parameters() if p.grad is not None
    )


def test_bad_model_arguments_are_one_recipe_error():
    with pytest.raises(RecipeError, match="zoh is for S4D"):
        build_backbone("S4", {"discretization": "zoh"}, 200)
    with pytest.raises(RecipeError, match="d_state=7"):
        build_backbone("S4D", {"d_state": 7}, 200)
    with pytest.raises(RecipeError, match="unexpected keyword argument 'd_modle'"):
        build_backbone("S4D", {"d_modle": 7}, 200)
    with pytest.raises(RecipeError, match=r"model\.kwargs\.n_domains: set by data\.domain"):
        build_backbone("S4", {"n_domains": 4}, 200)
    with pytest.raises(RecipeError, match="domain head"):
        build_backbone("EEGNeX", {}, 200, n_domains=3)


def test_state_dict_export_refuses_a_model_without_a_standalone_definition(tmp_path):
    from toolkit.export.state_dict import to_state_dict

    eegnex = HarnessModel(build_backbone("EEGNeX", {}, 200), 0, 1)
    with pytest.raises(ExportError, match="EEGNeX cannot be rebuilt"):
        to_state_dict(eegnex, tmp_path, {})
    assert not (tmp_path / "model.pth").exists()


def test_state_dict_export_rebuilds_the_model_without_the_toolkit(tmp_path):
    from toolkit.bundle.sandbox import Sandbox
    from toolkit.export.state_dict import to_state_dict

    torch.manual_seed(0)
    args = {"d_model": 8, "n_layers": 2, "d_state": 8, "n_heads": 2, "bidirectional": True}
    model = HarnessModel(build_backbone("S4D", args, 200, n_domains=3), 0.5, 0.2).eval()
    path = to_state_dict(model, tmp_path, {"recipe": "x/y"})
    assert path.name == "model.pth"
    arch = json.loads((tmp_path / "model.json").read_text())
    assert arch["recipe"] == "x/y" and arch["arch"]["backbone"]["bidirectional"] is True
    source = (tmp_path / "load.py").read_text()
    assert "toolkit" not in source.split('"""', 2)[2]
    x = (torch.randn(3, 129, 200) * 1e-5).numpy()
    np.save(tmp_path / "x.npy", x)
    result = Sandbox(blocked=("toolkit", "braindecode", "lightning")).run(
        tmp_path / "load.py", [str(tmp_path / "x.npy"), str(tmp_path / "y.npy")]
    )
    assert result.returncode == 0, result.stderr
    with torch.inference_mode():
        expected = model(torch.from_numpy(x)).numpy()
    assert np.abs(np.load(tmp_path / "y.npy") - expected).max() < 1e-6


class _AuxModel(nn.Module):
    """A toy model with both engine hooks, counting what the engine hands it."""

    def __init__(self):
        super().__init__()
        self.body = nn.Linear(3, 1)
        self.extra = nn.Linear(3, 1)
        self.seen: list[tuple[int, float]] = []

    def forward(self, x):
        return self.body(x)

    def auxiliary_losses(self, extras, progress):
        self.seen.append((len(extras["tag"]), progress))
        return {"toy": 10.0 + 0 * self.extra.weight.sum()}

    def param_groups(self, lr, weight_decay):
        return [
            {"params": list(self.body.parameters()), "lr": lr},
            {"params": list(self.extra.parameters()), "lr": lr / 10, "weight_decay": 0.0},
        ]


def test_engine_adds_auxiliary_losses_and_uses_parameter_groups():
    torch.manual_seed(0)
    x, y = torch.randn(16, 3), torch.randn(16, 1)
    data = [(x[i : i + 4], y[i : i + 4], {"tag": torch.arange(4)}) for i in range(0, 16, 4)]
    model = _AuxModel()
    cfg = TrainConfig(epochs=2, lr=0.1, weight_decay=0.5, scheduler="none")
    module = TaskModule(model, nn.MSELoss(), Metric("mse", "min", lambda a, b: 0.0), cfg)
    trainer = L.Trainer(max_epochs=2, logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False)  # fmt: skip
    trainer.fit(module, DataLoader(data, batch_size=None))
    assert trainer.callback_metrics["train_toy_loss"] == pytest.approx(10.0)
    assert float(trainer.callback_metrics["train_loss"]) > 10.0
    assert [n for n, _ in model.seen] == [4] * 8
    assert model.seen[0][1] == 0.0 and model.seen[-1][1] == pytest.approx(7 / 8)
    groups = trainer.optimizers[0].param_groups
    assert [g["lr"] for g in groups] == [0.1, 0.01]
    assert [g["weight_decay"] for g in groups] == [0.5, 0.0]
