"""A decoder-only transformer over one token per cell, with 2-D positions computed in-graph.

`forward` scores whole sequences (training, teacher-forced scoring); `decode` runs incremental
greedy decoding with a key/value cache over left-padded histories (the bundle's decoder.onnx)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from toolkit.competitions.arc.standalone import END, IN, NL, OUT, PAD, VOCAB

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

    def _qkv(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        b, t, c = x.shape
        q, k, v = self.qkv(self.norm1(x)).split(c, dim=2)
        q, k, v = (z.view(b, t, self.heads, c // self.heads).transpose(1, 2) for z in (q, k, v))
        return q, k, v

    def _rest(self, x: torch.Tensor, att: torch.Tensor) -> torch.Tensor:
        b, t, c = x.shape
        drop = self.dropout if self.training else 0.0
        x = x + F.dropout(self.proj(att.transpose(1, 2).reshape(b, t, c)), drop, self.training)
        return x + F.dropout(self.mlp(self.norm2(x)), drop, self.training)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        q, k, v = self._qkv(x)
        # No dropout on attention weights: it would force the O(T²)-memory math kernel.
        return self._rest(x, F.scaled_dot_product_attention(q, k, v, is_causal=True))

    def cached(
        self, x: torch.Tensor, mask: torch.Tensor, past_k: torch.Tensor, past_v: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The new positions `x` (B, S, C) attending to the cached keys/values and themselves
        under `mask` (B, 1, S, P+S); returns (x, keys, values) of all P+S positions."""
        q, k, v = self._qkv(x)
        k = torch.cat([past_k.to(k.dtype), k], dim=2)  # (under autocast k may be bf16)
        v = torch.cat([past_v.to(v.dtype), v], dim=2)
        return self._rest(x, F.scaled_dot_product_attention(q, k, v, attn_mask=mask)), k, v


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

    def _embed(self, tokens: torch.Tensor, pos: torch.Tensor, start: int | torch.Tensor = 0):
        """Embeddings of tokens[:, start:], their 2-D positions read from the whole sequence."""
        row, col, role = grid_positions(tokens)
        x = self.token(tokens[:, start:]) + self.position(pos[:, start:])
        x = x + self.row(row[:, start:]) + self.col(col[:, start:])
        return x + self.role(role[:, start:])

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        tokens = tokens.long()
        pos = torch.arange(tokens.shape[1], device=tokens.device).unsqueeze(0)
        x = self._embed(tokens, pos)
        for block in self.blocks:
            x = block(x)
        return self.head(self.norm(x))

    def decode(
        self, history: torch.Tensor, past_k: torch.Tensor, past_v: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One step of cached decoding: next-token logits (B, VOCAB) after each history.

        `history` (B, T) holds every token so far, left-padded with PAD (no PAD after the
        first real token); `past_k`/`past_v` (layers, B, heads, P, width/heads) cache the first
        P positions, so only the last T-P are computed (P=1 with a PAD first column starts a
        sequence). Returns the logits and the cache of all T positions."""
        tokens = history.long()
        start = past_k.shape[3]
        valid = tokens != PAD
        # Absolute positions count from the first real token; PAD columns sit at position 0.
        offset = (~valid).long().sum(dim=1, keepdim=True)
        index = torch.arange(tokens.shape[1], device=tokens.device).unsqueeze(0)
        x = self._embed(tokens, (index - offset).clamp(min=0), start)
        # Causal over real keys; every query sees itself, so PAD rows never softmax over nothing.
        queries, keys = index[:, start:].unsqueeze(2), index.unsqueeze(1)
        mask = (keys <= queries) & (valid.unsqueeze(1) | (keys == queries))
        mask = mask.unsqueeze(1)
        new_k, new_v = [], []
        for i, block in enumerate(self.blocks):
            x, k, v = block.cached(x, mask, past_k[i], past_v[i])
            new_k.append(k)
            new_v.append(v)
        return self.head(self.norm(x[:, -1])), torch.stack(new_k), torch.stack(new_v)

    def empty_cache(self, batch: int, device: torch.device | None = None):
        """A one-position cache (for a PAD first column) to start `decode` with."""
        blk = self.blocks[0]
        width = blk.qkv.in_features
        shape = (len(self.blocks), batch, blk.heads, 1, width // blk.heads)
        zeros = torch.zeros(shape, device=device)
        return zeros, zeros.clone()


class CachedDecoder(nn.Module):
    """`ARCTransformer.decode` as a module's forward, for export (decoder.onnx)."""

    def __init__(self, model: ARCTransformer):
        super().__init__()
        self.model = model

    def forward(self, history: torch.Tensor, past_k: torch.Tensor, past_v: torch.Tensor):
        return self.model.decode(history, past_k, past_v)


class TokenLoss(nn.Module):
    """Cross-entropy on labelled positions only (label -100 elsewhere)."""

    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(logits.flatten(0, 1).float(), labels.flatten(), ignore_index=-100)
