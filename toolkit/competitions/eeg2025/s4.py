"""S4 and S4D structured state-space models for EEG windows, in plain torch.

This module imports only torch and the standard library: the `state_dict` export embeds its
source in a standalone `load.py`. Two kernels:

- S4D (`kernel="diag"`): a diagonal complex state, initialised S4D-LegS (the eigenvalues of the
  normal part of HiPPO-LegS), S4D-Lin or S4D-Inv; ZOH or bilinear discretisation.
- S4 (`kernel="dplr"`): HiPPO-LegS as normal plus low rank (Lambda - P P*), bilinear
  discretisation through the Woodbury identity; the kernel is C dA^l dB by repeated squaring.

Training (and eager inference) computes the kernel with complex tensors and convolves by FFT.
Traced or exported, the same kernel is computed in real arithmetic (pairs of real tensors) and
applied as a depthwise `conv1d`, which TorchScript (torch 2.2.2 included) and ONNX both take.
In eval mode that kernel depends only on the weights, so each layer computes it once on entering
eval mode: an exported model holds it as a constant conv1d weight.
"""

from __future__ import annotations

import functools
import math

import torch
import torch.nn.functional as F
from torch import nn

SSM_PARAMETERS = ("log_dt", "A_re_log", "A_im", "B", "P")  # own optimiser group, no decay


def exporting() -> bool:
    """True while torch.jit.trace or torch.export (the ONNX exporter) records the model."""
    is_exporting = getattr(getattr(torch, "compiler", None), "is_exporting", None)
    return torch.jit.is_tracing() or bool(is_exporting is not None and is_exporting())


def hippo_legs(n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """HiPPO-LegS: A[n,k] = -sqrt(2n+1)sqrt(2k+1) below the diagonal, -(n+1) on it, 0 above;
    B[n] = sqrt(2n+1)."""
    q = torch.arange(n, dtype=torch.float64)
    r = torch.sqrt(2 * q + 1)
    A = -torch.tril(r[:, None] * r[None, :], -1) - torch.diag(q + 1)
    return A, r.clone()


@functools.lru_cache(maxsize=8)
def legs_dplr(n: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """HiPPO-LegS in the eigenbasis of its normal part, half of each conjugate pair kept:
    (Lambda, P, B), complex, length n // 2, with A = V (Lambda - P P*) V*. Cached: callers
    copy, never change them."""
    A, B = hippo_legs(n)
    P = torch.sqrt(torch.arange(n, dtype=torch.float64) + 0.5)
    normal = A + P[:, None] * P[None, :]  # -1/2 I + skew-symmetric
    skew = normal + 0.5 * torch.eye(n, dtype=torch.float64)
    w, V = torch.linalg.eigh(skew.to(torch.complex128) * -1j)
    keep = torch.argsort(w, descending=True)[: n // 2]
    lam = -0.5 + 1j * w[keep]
    V = V[:, keep]
    Vh = V.conj().transpose(0, 1)
    return lam, Vh @ P.to(V), Vh @ B.to(V)


def diagonal_init(init: str, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(Lambda, B) of length n // 2 for S4D-LegS, S4D-Lin or S4D-Inv."""
    half = n // 2
    k = torch.arange(half, dtype=torch.float64)
    if init == "legs":
        lam, _, B = legs_dplr(n)
        return lam, B
    if init == "lin":
        imag = math.pi * k
    elif init == "inv":
        imag = (n / math.pi) * (n / (2 * k + 1) - 1)
    else:
        raise ValueError(f"init={init!r}: use legs, lin or inv")
    return -0.5 + 1j * imag, torch.ones(half, dtype=torch.complex128)


def _pairs(z: torch.Tensor) -> torch.Tensor:
    return torch.view_as_real(z.to(torch.complex64)).contiguous()


# Real arithmetic on complex numbers kept as (real, imaginary) pairs: the export path.
def _mul(a, b):
    return a[0] * b[0] - a[1] * b[1], a[0] * b[1] + a[1] * b[0]


def _div(a, b):
    den = b[0] * b[0] + b[1] * b[1]
    return (a[0] * b[0] + a[1] * b[1]) / den, (a[1] * b[0] - a[0] * b[1]) / den


def _matmul(a, b):
    return a[0] @ b[0] - a[1] @ b[1], a[0] @ b[1] + a[1] @ b[0]


def _cat(a, b, dim: int):
    return torch.cat([a[0], b[0]], dim), torch.cat([a[1], b[1]], dim)


def _krylov_real(dA, dB, length: int, dense: bool):
    """dA^l dB for l < length by repeated squaring, in pairs; dense dA is (H, N, N)."""
    X = (dB[0].unsqueeze(-1), dB[1].unsqueeze(-1))
    M = dA
    while X[0].shape[-1] < length:
        step = _matmul(M, X) if dense else _mul((M[0].unsqueeze(-1), M[1].unsqueeze(-1)), X)
        X = _cat(X, step, -1)
        M = _matmul(M, M) if dense else _mul(M, M)
    return X[0][..., :length], X[1][..., :length]


def _krylov_complex(dA: torch.Tensor, dB: torch.Tensor, length: int) -> torch.Tensor:
    X, M = dB.unsqueeze(-1), dA
    while X.shape[-1] < length:
        X = torch.cat([X, M @ X], -1)
        M = M @ M
    return X[..., :length]


class SSMKernel(nn.Module):
    """The convolution kernel K (channels, H, L) of H independent state-space models.

    `channels` is 2 for a bidirectional layer (one C per direction, one state matrix)."""

    def __init__(self, d_model: int, d_state: int, kernel: str, init: str,
                 discretization: str, channels: int, dt_min: float, dt_max: float):  # fmt: skip
        super().__init__()
        if d_state < 2 or d_state % 2:
            raise ValueError(f"d_state={d_state}: use an even number >= 2")
        if kernel not in ("diag", "dplr"):
            raise ValueError(f"kernel={kernel!r}: use diag (S4D) or dplr (S4)")
        if discretization not in ("zoh", "bilinear"):
            raise ValueError(f"discretization={discretization!r}: use zoh or bilinear")
        if kernel == "dplr" and discretization != "bilinear":
            raise ValueError("S4 (normal plus low rank) discretizes bilinearly; zoh is for S4D")
        if kernel == "dplr" and init != "legs":
            raise ValueError(f"S4 starts from HiPPO-LegS; init={init!r} is an S4D option")
        self.kernel, self.discretization = kernel, discretization
        H, half = d_model, d_state // 2
        if kernel == "dplr":
            lam, P, B = legs_dplr(d_state)
            self.P = nn.Parameter(_pairs(P).repeat(H, 1, 1))
        else:
            lam, B = diagonal_init(init, d_state)
        self.A_re_log = nn.Parameter(torch.log(-lam.real).float().repeat(H, 1))
        self.A_im = nn.Parameter(lam.imag.float().repeat(H, 1))
        self.B = nn.Parameter(_pairs(B).repeat(H, 1, 1))
        u = torch.rand(H, generator=torch.Generator().manual_seed(0))
        self.log_dt = nn.Parameter(u * (math.log(dt_max) - math.log(dt_min)) + math.log(dt_min))
        self.C = nn.Parameter(torch.randn(channels, H, half, 2) * math.sqrt(0.5))
        self.half = half

    def forward(self, length: int, real: bool = False) -> torch.Tensor:
        return self._real(length) if real else self._complex(length)

    def _complex(self, length: int) -> torch.Tensor:
        dt = torch.exp(self.log_dt).unsqueeze(-1)
        A = torch.complex(-torch.exp(self.A_re_log), self.A_im)
        B, C = torch.view_as_complex(self.B), torch.view_as_complex(self.C)
        if self.kernel == "dplr":
            P = torch.view_as_complex(self.P)
            D = 1 / (2 / dt - A)
            DP = D * P
            denom = 1 + (P.conj() * DP).sum(-1)
            A1 = (
                torch.diag_embed(D)
                - DP.unsqueeze(-1) * (P.conj() * D).unsqueeze(-2) / denom[:, None, None]
            )
            PP = P.unsqueeze(-1) * P.conj().unsqueeze(-2)
            dA = A1 @ (torch.diag_embed(2 / dt + A) - PP)
            dB = 2 * (A1 @ B.unsqueeze(-1)).squeeze(-1)
            X = _krylov_complex(dA, dB, length)  # (H, N, L)
        else:
            dtA = dt * A
            if self.discretization == "zoh":
                dB = (torch.exp(dtA) - 1) / A * B
                log_dA = dtA
            else:
                dB = dt / (1 - dtA / 2) * B
                log_dA = torch.log((1 + dtA / 2) / (1 - dtA / 2))
            steps = torch.arange(length, device=A.device, dtype=A.real.dtype)
            X = dB.unsqueeze(-1) * torch.exp(log_dA.unsqueeze(-1) * steps)
        return 2 * torch.einsum("chn,hnl->chl", C, X).real

    def _real(self, length: int) -> torch.Tensor:
        dt = torch.exp(self.log_dt).unsqueeze(-1)
        A = (-torch.exp(self.A_re_log), self.A_im)
        B, C = (self.B[..., 0], self.B[..., 1]), (self.C[..., 0], self.C[..., 1])
        one = torch.ones_like(A[0])
        if self.kernel == "dplr":
            P = (self.P[..., 0], self.P[..., 1])
            Pc = (P[0], -P[1])
            D = _div((one, 0 * one), (2 / dt - A[0], -A[1]))
            DP = _mul(D, P)
            PcD = _mul(Pc, D)
            s = _mul(Pc, DP)
            denom = (1 + s[0].sum(-1), s[1].sum(-1))
            outer = _mul((DP[0].unsqueeze(-1), DP[1].unsqueeze(-1)),
                         (PcD[0].unsqueeze(-2), PcD[1].unsqueeze(-2)))  # fmt: skip
            low = _div(outer, (denom[0][:, None, None], denom[1][:, None, None]))
            A1 = (torch.diag_embed(D[0]) - low[0], torch.diag_embed(D[1]) - low[1])
            PP = _mul((P[0].unsqueeze(-1), P[1].unsqueeze(-1)),
                      (Pc[0].unsqueeze(-2), Pc[1].unsqueeze(-2)))  # fmt: skip
            A0 = (torch.diag_embed(2 / dt + A[0]) - PP[0], torch.diag_embed(A[1]) - PP[1])
            dA = _matmul(A1, A0)
            dB = _matmul(A1, (B[0].unsqueeze(-1), B[1].unsqueeze(-1)))
            dB = (2 * dB[0].squeeze(-1), 2 * dB[1].squeeze(-1))
            X = _krylov_real(dA, dB, length, dense=True)
        else:
            dtA = (dt * A[0], dt * A[1])
            if self.discretization == "zoh":
                mag = torch.exp(dtA[0])
                dA = (mag * torch.cos(dtA[1]), mag * torch.sin(dtA[1]))
                dB = _mul(_div((dA[0] - 1, dA[1]), A), B)
            else:
                den = (1 - dtA[0] / 2, -dtA[1] / 2)
                dA = _div((1 + dtA[0] / 2, dtA[1] / 2), den)
                dB = _mul(_div((dt * one, 0 * one), den), B)
            X = _krylov_real(dA, dB, length, dense=False)
        re = torch.einsum("chn,hnl->chl", C[0], X[0]) - torch.einsum("chn,hnl->chl", C[1], X[1])
        return 2 * re


def fft_conv(u: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """y = K * u along time by FFT: u (B, H, L), k (channels, H, L); two channels: bidirectional."""
    L = u.shape[-1]
    kernel = k[0] if k.shape[0] == 1 else F.pad(k[0], (0, L)) + F.pad(k[1].flip(-1), (L, 0))
    n = 2 * L
    y = torch.fft.irfft(torch.fft.rfft(u, n) * torch.fft.rfft(kernel, n), n)
    return y[..., :L]


def conv_weight(k: torch.Tensor) -> torch.Tensor:
    """The depthwise conv1d weight (H, 1, L or 2L) of a kernel (channels, H, L)."""
    weight = k[0].flip(-1) if k.shape[0] == 1 else torch.cat([k[0].flip(-1), k[1]], -1)
    return weight.unsqueeze(1)


def apply_conv(u: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """y = K * u as one depthwise conv1d, causal (weight of length L) or bidirectional (2L).
    conv1d's own symmetric padding, then a slice: no separate pad op enters the graph."""
    H, L = u.shape[1], u.shape[-1]
    if weight.shape[-1] == L:  # causal: L - 1 zeros on the left
        return F.conv1d(u, weight, padding=L - 1, groups=H)[..., :L]
    return F.conv1d(u, weight, padding=L, groups=H)[..., 1 : L + 1]  # L - 1 left, L right


def direct_conv(u: torch.Tensor, k: torch.Tensor) -> torch.Tensor:
    """The same convolution as `fft_conv`, as one depthwise conv1d (exports everywhere)."""
    return apply_conv(u, conv_weight(k))


class S4Layer(nn.Module):
    """y = GLU(W GELU(K * u + D u)): the S4 layer (kernel, skip, activation, mixing)."""

    def __init__(self, d_model: int, d_state: int, kernel: str, init: str, discretization: str,
                 bidirectional: bool, dropout: float, dt_min: float, dt_max: float,
                 n_times: int = 0):  # fmt: skip
        super().__init__()
        channels = 2 if bidirectional else 1
        self.kernel = SSMKernel(
            d_model, d_state, kernel, init, discretization, channels, dt_min, dt_max
        )
        self.D = nn.Parameter(torch.randn(d_model))
        self.dropout = nn.Dropout(dropout)
        self.mix = nn.Conv1d(d_model, 2 * d_model, 1)
        self.export_path = False  # force the real-arithmetic + conv1d path (tests, benchmarks)
        self.n_times = n_times
        # In eval mode the kernel depends on nothing but the weights: it is computed once (real
        # arithmetic) when the layer enters eval mode and kept as the conv1d weight, so a trace
        # or an export holds one constant and a convolution. Dropped in training mode and
        # whenever weights are loaded.
        self.register_buffer("frozen_weight", None, persistent=False)
        self._register_load_state_dict_pre_hook(self._unfreeze)

    def _unfreeze(self, *args, **kwargs) -> None:
        self.frozen_weight = None

    def train(self, mode: bool = True) -> S4Layer:
        super().train(mode)
        self.frozen_weight = None
        if not mode and self.n_times:
            with torch.no_grad():
                self.frozen_weight = conv_weight(self.kernel(self.n_times, real=True))
        return self

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        L = u.shape[-1]
        if self.export_path or exporting():
            frozen = self.frozen_weight
            if frozen is not None and not self.training and self.n_times == L:
                y = apply_conv(u, frozen)
            else:
                y = direct_conv(u, self.kernel(L, real=True))
        else:  # FFTs and complex numbers in float32, also under mixed precision
            with torch.autocast(u.device.type, enabled=False):
                y = fft_conv(u.float(), self.kernel(L)).to(u.dtype)
        y = self.dropout(F.gelu(y + self.D.unsqueeze(-1) * u))
        return F.glu(self.mix(y), dim=1)


class AttentionPool(nn.Module):
    """A learned CLS query attends over the time steps (multi-head): (B, L, d) -> (B, d)."""

    def __init__(self, d_model: int, n_heads: int):
        super().__init__()
        if d_model % n_heads:
            raise ValueError(f"d_model={d_model} is not divisible by n_heads={n_heads}")
        self.n_heads = n_heads
        self.cls = nn.Parameter(torch.randn(1, 1, d_model) * 0.02)
        self.q = nn.Linear(d_model, d_model)
        self.kv = nn.Linear(d_model, 2 * d_model)
        self.out = nn.Linear(d_model, d_model)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        B, L, d = x.shape
        h, dh = self.n_heads, d // self.n_heads
        q = self.q(self.cls).reshape(1, h, 1, dh)
        k, v = self.kv(x).reshape(B, L, 2, h, dh).permute(2, 0, 3, 1, 4)
        weights = torch.softmax((q * k).sum(-1) / math.sqrt(dh), dim=-1)  # (B, h, L)
        pooled = (weights.unsqueeze(-1) * v).sum(2).reshape(B, d)
        return self.out(pooled)


class GradientReversal(torch.autograd.Function):
    """Identity forward; the gradient times -lambda backward (DANN)."""

    @staticmethod
    def forward(ctx, x: torch.Tensor, lam: float) -> torch.Tensor:
        ctx.lam = lam
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        return -ctx.lam * grad, None


def dann_lambda(progress: float) -> float:
    """Ganin & Lempitsky's schedule: 2 / (1 + exp(-10 p)) - 1 over training progress p."""
    return 2.0 / (1.0 + math.exp(-10.0 * progress)) - 1.0


class S4Net(nn.Module):
    """EEG window (B, n_chans, n_times) -> (B, n_outputs): input norm, channel mixing, residual
    pre-norm S4 layers, attention pooling with a CLS query, a linear head. With `n_domains`, a
    domain classifier behind a gradient reversal layer reads the pooled features in training
    (`auxiliary_losses`); it never enters `forward`, so exports leave it out."""

    def __init__(
        self,
        n_chans: int = 129,
        n_outputs: int = 1,
        n_times: int = 200,
        d_model: int = 128,
        n_layers: int = 4,
        d_state: int = 64,
        dropout: float = 0.1,
        bidirectional: bool = False,
        kernel: str = "diag",
        init: str = "lin",
        discretization: str = "zoh",
        n_heads: int = 4,
        dt_min: float = 1e-3,
        dt_max: float = 1e-1,
        ssm_lr: float = 1e-3,
        n_domains: int = 0,
        domain_hidden: int = 64,
        domain_weight: float = 1.0,
    ):
        super().__init__()
        self.arch = {k: v for k, v in locals().items() if k not in ("self", "__class__")}
        self.ssm_lr = ssm_lr
        self.domain_weight = domain_weight
        self.input_norm = nn.BatchNorm1d(n_chans)
        self.encoder = nn.Conv1d(n_chans, d_model, 1)
        self.norms = nn.ModuleList(nn.LayerNorm(d_model) for _ in range(n_layers))
        layer_args = (d_model, d_state, kernel, init, discretization, bidirectional, dropout,
                      dt_min, dt_max, n_times)  # fmt: skip
        self.layers = nn.ModuleList(S4Layer(*layer_args) for _ in range(n_layers))
        self.dropout = nn.Dropout(dropout)
        self.pool = AttentionPool(d_model, n_heads)
        self.head_norm = nn.LayerNorm(d_model)
        self.head = nn.Linear(d_model, n_outputs)
        self.domain_head = None
        if n_domains > 1:
            self.domain_head = nn.Sequential(
                nn.Linear(d_model, domain_hidden), nn.GELU(), nn.Linear(domain_hidden, n_domains)
            )
        self._features: torch.Tensor | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        z = self.encoder(self.input_norm(x))  # (B, d, L)
        for norm, layer in zip(self.norms, self.layers, strict=True):
            y = norm(z.transpose(1, 2)).transpose(1, 2)
            z = z + self.dropout(layer(y))
        features = self.head_norm(self.pool(z.transpose(1, 2)))
        if self.training and self.domain_head is not None:
            self._features = features
        return self.head(features)

    def auxiliary_losses(self, extras: dict, progress: float) -> dict[str, torch.Tensor]:
        """The domain-adversarial loss of the last training forward (DANN), if any."""
        if self.domain_head is None or self._features is None or "domain" not in extras:
            return {}
        reversed_ = GradientReversal.apply(self._features, dann_lambda(progress))
        self._features = None
        logits = self.domain_head(reversed_)
        loss = F.cross_entropy(logits, extras["domain"].to(logits.device).long().view(-1))
        return {"domain": self.domain_weight * loss}

    def param_groups(self, lr: float, weight_decay: float) -> list[dict]:
        """The SSM parameters (A, B, P, dt) at lr <= ssm_lr without weight decay; the rest at
        `lr` with `weight_decay`."""
        ssm, rest = [], []
        for name, param in self.named_parameters():
            (ssm if name.rsplit(".", 1)[-1] in SSM_PARAMETERS else rest).append(param)
        return [
            {"params": rest, "lr": lr, "weight_decay": weight_decay, "name": "default"},
            {"params": ssm, "lr": min(lr, self.ssm_lr), "weight_decay": 0.0, "name": "ssm"},
        ]

    def standalone_spec(self) -> dict:
        """How a standalone load.py rebuilds this model: source modules, a build expression
        over `arch`, and the JSON-ready architecture arguments."""
        return {"modules": [__name__], "build": "S4Net(**arch)", "arch": dict(self.arch)}
