"""A decoder-only transformer over one token per cell, with 2-D positions computed in-graph."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from toolkit.competitions.arc.standalone import END, IN, NL, OUT, VOCAB

MAX_INDEX = 32  # rows/columns 0-30 plus one for "beyond"


def _last_value(breaks: torch.Tensor, values: torch.Tensor) -> torch.Tensor:
    """At each position, `values` at the most recent position where `breaks` holds (else 0).

    Written with cumsum + scatter_add + gather (no cummax) so that it exports to ONNX."""
    seg = torch.cumsum(breaks.long(), dim=1)
    index = torch.where(breaks, seg, torch.zeros_like(seg))
    source = torch.where(breaks, values, torch.zeros_like(values))
    start = torch.zeros(
        values.shape[0], values.shape[1] + 1, dtype=values.dtype, device=values.device
    )
    start = start.scatter_add(1, index, source)
    return torch.gather(start, 1, seg)


def grid_positions(tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(row, column, role) of every token: position inside its grid and which marker opened it."""
    pos = torch.arange(tokens.shape[1], device=tokens.device).unsqueeze(0).expand_as(tokens)
    is_nl = tokens == NL
    is_marker = (tokens == IN) | (tokens == OUT) | (tokens == END)
    col = pos - _last_value(is_nl | is_marker, pos)
    nl_before = torch.cumsum(is_nl.long(), dim=1) - is_nl.long()
    row = nl_before - _last_value(is_marker, nl_before)
    role = _last_value(is_marker, tokens)
    return row.clamp(0, MAX_INDEX - 1), col.clamp(0, MAX_INDEX - 1), role


class Block(nn.Module):
    """Pre-norm causal self-attention and MLP."""

    def __init__(self, width: int, heads: int, dropout: float):
        super().__init__()
        self.heads = heads
        self.norm1 = nn.LayerNorm(width)
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)
        self.norm2 = nn.LayerNorm(width)
        self.mlp = nn.Sequential(
            nn.Linear(width, 4 * width), nn.GELU(), nn.Linear(4 * width, width)
        )
        self.dropout = dropout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, t, c = x.shape
        q, k, v = self.qkv(self.norm1(x)).split(c, dim=2)
        q, k, v = (z.view(b, t, self.heads, c // self.heads).transpose(1, 2) for z in (q, k, v))
        drop = self.dropout if self.training else 0.0
        # No dropout on attention weights: it would force the O(T²)-memory math kernel.
        att = F.scaled_dot_product_attention(q, k, v, is_causal=True)
        x = x + F.dropout(self.proj(att.transpose(1, 2).reshape(b, t, c)), drop, self.training)
        return x + F.dropout(self.mlp(self.norm2(x)), drop, self.training)


class ARCTransformer(nn.Module):
    """Token ids (B, T) -> next-token logits (B, T, VOCAB). Float ids are accepted (the toolkit's
    generic export feeds float32 reference inputs)."""

    def __init__(
        self, width: int = 256, layers: int = 6, heads: int = 8, max_len: int = 2048,
        dropout: float = 0.0,
    ):  # fmt: skip
        super().__init__()
        if width % heads:
            raise ValueError(f"model width {width} is not divisible by heads {heads}")
        self.max_len = max_len
        self.token = nn.Embedding(VOCAB, width)
        self.position = nn.Embedding(max_len, width)
        self.row = nn.Embedding(MAX_INDEX, width)
        self.col = nn.Embedding(MAX_INDEX, width)
        self.role = nn.Embedding(VOCAB, width)
        self.blocks = nn.ModuleList(Block(width, heads, dropout) for _ in range(layers))
        self.norm = nn.LayerNorm(width)
        self.head = nn.Linear(width, VOCAB)
        self.apply(self._init)

    @staticmethod
    def _init(module: nn.Module) -> None:
        if isinstance(module, nn.Linear | nn.Embedding):
            nn.init.normal_(module.weight, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        tokens = tokens.long()
        row, col, role = grid_positions(tokens)
        pos = torch.arange(tokens.shape[1], device=tokens.device).unsqueeze(0)
        x = self.token(tokens) + self.position(pos) + self.row(row) + self.col(col)
        x = x + self.role(role)
        for block in self.blocks:
            x = block(x)
        return self.head(self.norm(x))


class TokenLoss(nn.Module):
    """Cross-entropy on labelled positions only (label -100 elsewhere)."""

    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(logits.flatten(0, 1).float(), labels.flatten(), ignore_index=-100)
