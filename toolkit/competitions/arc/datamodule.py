"""The arc datamodule: every pair of every training task is a target once per epoch, under a
fresh augmentation; validation is the evaluation tasks' test pairs, unaugmented."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, TensorDataset

from toolkit.competitions.arc.config import ARCData
from toolkit.competitions.arc.standalone import (
    IN,
    OUT,
    PAD,
    View,
    colour_permutation,
    grid_tokens,
    pair_tokens,
)
from toolkit.competitions.arc.synth import write_synthetic
from toolkit.competitions.arc.tasks import Pair, Task, read_tasks, solutions_beside
from toolkit.config.settings import Settings
from toolkit.data.fingerprint import KEY as FINGERPRINT
from toolkit.data.fingerprint import DataFingerprint
from toolkit.data.loaders import ResumableLoader, item_rng
from toolkit.data.sources import synthetic_root
from toolkit.errors import DataError

log = logging.getLogger(__name__)
IGNORE = -100


def resolve_source(source: str, settings: Settings, part: str, synthetic: dict) -> Path:
    """A task folder or challenges file: `synthetic` (made once, cached), absolute, or relative
    to TOOLKIT_DATA_DIR (then to the current folder)."""
    if source == "synthetic":
        root = synthetic_root(settings, "arc", synthetic, lambda r: write_synthetic(r, **synthetic))
        return root / part
    path = Path(source).expanduser()
    candidates = [path] if path.is_absolute() else [settings.data_dir / path, Path.cwd() / path]
    for candidate in candidates:
        if candidate.exists():
            return candidate.resolve()
    tried = " or ".join(str(c) for c in candidates)
    raise DataError(f"arc source {source}: not found ({tried}); set TOOLKIT_DATA_DIR")


def sequence(
    demos: list[Pair], query: Pair, max_len: int, loss_on_demos: bool
) -> tuple[list[int], list[int], int] | None:
    """(tokens, labels, demos dropped) for one query pair; the longest demos are dropped until
    it fits in `max_len + 1` tokens (inputs and labels are shifted by one). None if none fit."""
    query_len = len(pair_tokens(*query))
    sizes = [len(pair_tokens(*d)) for d in demos]
    kept = list(range(len(demos)))
    while kept and sum(sizes[i] for i in kept) + query_len > max_len + 1:
        kept.remove(max(kept, key=lambda i: (sizes[i], i)))
    if not kept:
        return None
    tokens: list[int] = []
    labels: list[int] = []
    for n, (inp, out) in enumerate([*(demos[i] for i in kept), query]):
        labelled = loss_on_demos or n == len(kept)
        in_part = [IN, *grid_tokens(inp), OUT]
        out_part = pair_tokens(inp, out)[len(in_part) :]
        tokens += in_part + out_part
        labels += [IGNORE] * len(in_part) + (out_part if labelled else [IGNORE] * len(out_part))
    return tokens[:-1], labels[1:], len(demos) - len(kept)


def _worst_case_len(pair: Pair) -> int:
    """Tokens of a pair under its longest dihedral view (a transpose changes row ends)."""
    return max(len(pair_tokens(*pair)), len(pair_tokens(pair[0].T, pair[1].T)))


class AugmentedPairs(Dataset):
    """(task, query pair) items; each access draws a view, a colour permutation and a demo order
    from (seed, epoch, index), so a resumed run sees the views an uninterrupted one would."""

    def __init__(self, tasks: list[list[Pair]], cfg: ARCData, seed: int):
        self.cfg = cfg
        self.items = [(t, q) for t, pairs in enumerate(tasks) for q in range(len(pairs))]
        self.tasks = tasks
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        aug, rng = self.cfg.augment, item_rng(self.seed, self.epoch, index)
        t, q = self.items[index]
        pairs = self.tasks[t]
        view = View(
            int(rng.integers(8)) if aug.dihedral else 0,
            colour_permutation(rng) if aug.colours else np.arange(10),
        )
        others = [pairs[i] for i in range(len(pairs)) if i != q]
        if aug.shuffle_demos:
            others = [others[i] for i in rng.permutation(len(others))]
        demos = [(view.apply(i), view.apply(o)) for i, o in others]
        query = (view.apply(pairs[q][0]), view.apply(pairs[q][1]))
        built = sequence(demos, query, self.cfg.max_len, self.cfg.loss_on_demo_outputs)
        assert built is not None  # tasks that cannot fit were left out in setup
        tokens, labels, _ = built
        return torch.tensor(tokens), torch.tensor(labels)


def collate(batch: list[tuple[torch.Tensor, torch.Tensor]]) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-pad to the longest sequence (causal attention never looks at the padding)."""
    length = max(len(x) for x, _ in batch)
    x = torch.full((len(batch), length), PAD, dtype=torch.long)
    y = torch.full((len(batch), length), IGNORE, dtype=torch.long)
    for i, (tokens, labels) in enumerate(batch):
        x[i, : len(tokens)] = tokens
        y[i, : len(labels)] = labels
    return x, y


def _trainable(pairs: list[Pair], max_len: int) -> list[Pair]:
    """Pairs that fit with at least one other pair as a demonstration, under any view."""
    sizes = [_worst_case_len(p) for p in pairs]
    return [
        p for i, p in enumerate(pairs)
        if len(pairs) > 1 and sizes[i] + min(s for j, s in enumerate(sizes) if j != i) <= max_len
    ]  # fmt: skip


class ARCDataModule(L.LightningDataModule):
    """Training sequences from `train_sources` (+ evaluation demos with test-time training);
    validation: the evaluation tasks' test pairs; `eval_tasks` for the evaluate hook."""

    def __init__(self, cfg: ARCData, batch_size: int, settings: Settings, seed: int):
        super().__init__()
        self.cfg = cfg
        self.batch_size = batch_size
        self.settings = settings
        self.seed = seed
        self.stats: dict[str, Any] = {}
        self.eval_tasks: dict[str, Task] = {}
        self.read = DataFingerprint(settings)
        self._ready = False

    def _read(self, source: str, part: str) -> dict[str, Task]:
        synthetic = self.cfg.synthetic.model_dump()
        path = resolve_source(source, self.settings, part, synthetic)
        files = sorted(path.glob("*.json")) if path.is_dir() else [path, solutions_beside(path)]
        self.read.read_local(path if path.is_dir() else path.parent, *filter(None, files))
        return read_tasks(path)

    def setup(self, stage: str | None = None) -> None:
        if self._ready:
            return
        cfg = self.cfg
        train: dict[str, Task] = {}
        for source in cfg.train_sources:
            train.update(self._read(source, "training"))
        self.eval_tasks = self._read(cfg.eval_source, "evaluation")
        unsolved = [t for t, task in self.eval_tasks.items() if task.test_outputs is None]
        if unsolved:
            raise DataError(
                f"data.eval_source={cfg.eval_source}: task {unsolved[0]} has no test outputs "
                "to score against (give a task folder with outputs or *_solutions.json beside)"
            )
        overlap = sorted(set(train) & set(self.eval_tasks))
        if overlap:
            log.warning("%d evaluation task(s) also in the training sources (first: %s): their "
                        "test outputs are trained on", len(overlap), overlap[0])  # fmt: skip
        groups = [task.pairs for task in train.values()]
        if cfg.train_on_eval_demos:
            groups += [task.train for task in self.eval_tasks.values()]
        total = sum(len(g) for g in groups)
        self.train_groups = [g for g in (_trainable(g, cfg.max_len) for g in groups) if len(g) > 1]
        kept = sum(len(g) for g in self.train_groups)
        truncated = sum(
            sequence(g[:q] + g[q + 1 :], g[q], cfg.max_len, False)[2] > 0  # type: ignore[index]
            for g in self.train_groups
            for q in range(len(g))
        )
        if not kept:
            raise DataError(
                f"arc: none of the {total} training pairs fits data.max_len={cfg.max_len} "
                "with a demonstration; raise data.max_len"
            )
        self._build_val()
        synthetic = "synthetic" in [*cfg.train_sources, cfg.eval_source]
        generator = {"name": "arc.synth", **cfg.synthetic.model_dump()} if synthetic else None
        self.stats = {
            "max_len": cfg.max_len,
            "train_tasks": len(train),
            "eval_tasks": len(self.eval_tasks),
            "train_on_eval_demos": cfg.train_on_eval_demos,
            "train_pairs": total,
            "train_pairs_used_per_epoch": kept,
            "train_pairs_skipped_too_long": total - kept,
            "train_pairs_with_demos_dropped": int(truncated),
            **self.val_stats,
            FINGERPRINT: self.read.as_dict(
                preprocessing=cfg.model_dump(include={"max_len", "train_on_eval_demos"}),
                generator=generator,
            ),
        }
        if total - kept:
            log.warning("%d of %d training pairs cannot fit data.max_len=%d and are skipped",
                        total - kept, total, cfg.max_len)  # fmt: skip
        self._ready = True

    def _build_val(self) -> None:
        rows, truncated, skipped = [], 0, 0
        for task in self.eval_tasks.values():
            for inp, out in zip(task.test_inputs, task.test_outputs or [], strict=True):
                built = sequence(task.train, (inp, out), self.cfg.max_len, loss_on_demos=False)
                if built is None:
                    skipped += 1
                    continue
                rows.append(built[:2])
                truncated += built[2] > 0
        if not rows:
            raise DataError(
                f"arc: no evaluation test pair fits data.max_len={self.cfg.max_len}; raise it"
            )
        x, y = collate([(torch.tensor(a), torch.tensor(b)) for a, b in rows])
        self.X_val, self.y_val = x, y
        self.val_stats = {
            "val_sequences": len(rows),
            "val_truncated_demos": truncated,
            "val_skipped_too_long": skipped,
        }

    def train_dataloader(self) -> DataLoader:
        data = AugmentedPairs(self.train_groups, self.cfg, self.seed)
        return ResumableLoader(
            data,
            batch_size=self.batch_size,
            seed=self.seed,
            collate_fn=collate,
            num_workers=self.settings.num_workers,
        )

    def val_dataloader(self) -> DataLoader:
        return DataLoader(TensorDataset(self.X_val, self.y_val), batch_size=self.batch_size)

    def reference_inputs(self, n: int) -> np.ndarray:
        """Validation token sequences (padded to one length) to check exported models."""
        x = self.X_val[:n]
        used = int((x != PAD).sum(1).max())
        return x[:, :used].numpy().copy()
