"""The temporal network (dilated 1-D convolutions, optionally a GRU or self-attention) and
the whitelist-masked one-vs-rest loss."""

from __future__ import annotations

import torch
from torch import nn


class ResidualBlock(nn.Module):
    """x + conv1x1(GELU(dilated conv(x)))."""

    def __init__(self, width: int, kernel: int, dilation: int, dropout: float):
        super().__init__()
        self.conv = nn.Conv1d(width, width, kernel, padding=dilation * (kernel - 1) // 2,
                              dilation=dilation)  # fmt: skip
        self.mix = nn.Conv1d(width, width, 1)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.drop(self.mix(nn.functional.gelu(self.conv(x))))


class TemporalNet(nn.Module):
    """(B, D, T) features -> (B, T, C) logits, one per output (action or coarse group).

    The features' training mean and std are buffers, so the exported model normalises its own
    input; normalised values are clipped to [-8, 8]."""

    def __init__(
        self,
        n_features: int,
        n_outputs: int,
        mean: list[float] | None = None,
        std: list[float] | None = None,
        width: int = 64,
        layers: int = 5,
        kernel: int = 3,
        dropout: float = 0.1,
        gru: bool = False,
        attention: bool = False,
        heads: int = 4,
    ):
        super().__init__()
        mean_t = torch.tensor(mean if mean is not None else [0.0] * n_features)
        std_t = torch.tensor(std if std is not None else [1.0] * n_features)
        self.register_buffer("mean", mean_t.float().view(1, -1, 1))
        self.register_buffer("std", std_t.float().clamp(min=1e-3).view(1, -1, 1))
        self.inp = nn.Conv1d(n_features, width, 1)
        self.blocks = nn.Sequential(
            *[ResidualBlock(width, kernel, 2**i, dropout) for i in range(layers)]
        )
        self.gru = nn.GRU(width, width // 2, batch_first=True, bidirectional=True) if gru else None
        self.attention = (
            nn.TransformerEncoderLayer(width, heads, 2 * width, dropout, batch_first=True)
            if attention else None
        )  # fmt: skip
        self.out = nn.Linear(width, n_outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = ((x - self.mean) / self.std).clamp(-8.0, 8.0)
        h = self.blocks(self.inp(x)).transpose(1, 2)  # (B, T, W)
        if self.gru is not None:
            h = h + self.gru(h)[0]
        if self.attention is not None:
            h = self.attention(h)
        return self.out(h)


class MaskedBCE(nn.Module):
    """BCE over whitelisted frames only: targets are 1 (labelled), 0 (whitelisted, not
    labelled) or -1 (not whitelisted, or padding: ignored). Positive frames of output c
    weigh `class_weights[c] * positive_weight`."""

    def __init__(self, class_weights: list[float] | None, positive_weight: float):
        super().__init__()
        weights = torch.tensor(class_weights or [1.0], dtype=torch.float32)
        self.register_buffer("class_weights", weights * positive_weight)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        valid = target >= 0
        positive = target > 0
        weight = torch.where(positive, self.class_weights.to(logits.dtype), 1.0) * valid
        loss = nn.functional.binary_cross_entropy_with_logits(
            logits, positive.to(logits.dtype), weight=weight, reduction="sum"
        )
        return loss / valid.sum().clamp(min=1)
