"""The eeg2025 datamodule: subjects chosen from participants.tsv, windows from the on-disk cache.

Subjects are selected per release (release, task availability, a challenge 2 target), shuffled
deterministically and taken until `max_subjects` have recordings; windows come memory-mapped
from the window cache, so after the first run no EEG file is fetched or parsed again.
"""

from __future__ import annotations

import logging
from collections import Counter
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from toolkit.competitions.eeg2025.bids import (
    BAND,
    REFERENCE,
    Recording,
    read_participants,
    subject_recordings,
    task_available,
)
from toolkit.competitions.eeg2025.config import C2_TARGETS, SFREQ, EEG2025Data
from toolkit.competitions.eeg2025.synth import SYNTH_VERSION, write_synthetic_bids
from toolkit.competitions.eeg2025.windows import WINDOWS_VERSION, recording_windows
from toolkit.config.settings import Settings
from toolkit.data.array_cache import ArrayCache
from toolkit.data.fingerprint import KEY as FINGERPRINT
from toolkit.data.fingerprint import DataFingerprint
from toolkit.data.loaders import ResumableLoader
from toolkit.data.remote import open_source
from toolkit.data.sources import synthetic_root
from toolkit.errors import DataError

if TYPE_CHECKING:
    from toolkit.data.remote import Source

log = logging.getLogger(__name__)
RELEASE = "{release}"


def release_sources(cfg: EEG2025Data, settings: Settings) -> list[tuple[str | None, Source]]:
    """One source per release: `data.source` with `{release}` filled in (or synthetic data made
    once per release); a source without the placeholder is read once, filtered by release."""
    releases: list[str | None] = list(cfg.releases) or [None]
    if cfg.source == "synthetic":
        out = []
        for i, release in enumerate(releases):
            params = {**cfg.synthetic.model_dump(), "task": cfg.task, "release": release or "R1"}
            params["seed"] += i
            root = synthetic_root(
                settings,
                "eeg2025",
                {**params, "version": SYNTH_VERSION},
                lambda root, p=params: write_synthetic_bids(root, **p),
            )
            out.append((release, open_source(str(root), settings, cfg.cache)))
        return out
    if RELEASE in cfg.source:
        if not cfg.releases:
            raise DataError(f"data.source={cfg.source} has {RELEASE}; list data.releases too")
        return [(r, open_source(cfg.source.replace(RELEASE, r), settings, cfg.cache))
                for r in cfg.releases]  # fmt: skip
    return [(None, open_source(cfg.source, settings, cfg.cache))]


def split_subjects(
    subjects: list[str], val_fraction: float, seed: int, min_val: int = 1
) -> tuple[list, list]:
    """Deterministic subject-grouped split: no subject on both sides."""
    order = np.random.default_rng(seed).permutation(sorted(subjects))
    n_val = min(max(min_val, round(len(order) * val_fraction)), len(order) - 1)
    return sorted(order[n_val:].tolist()), sorted(order[:n_val].tolist())


@dataclass
class Candidate:
    """A subject that passed the participants.tsv filters, with where to read it."""

    subject: str
    release: str | None
    source: Source
    c2_score: float  # the subject's challenge 2 score (NaN when n/a)


def _candidates(cfg: EEG2025Data, settings: Settings, skipped: Counter) -> list[Candidate]:
    found: list[Candidate] = []
    for release, source in release_sources(cfg, settings):
        table = read_participants(source)
        keep = task_available(table, cfg.task)
        skipped[f"{cfg.task} unavailable"] += int((~keep).sum())
        if release is not None and "release_number" in table.columns:
            in_release = table["release_number"].astype(str) == release
            keep &= in_release
        elif cfg.releases and "release_number" in table.columns:
            keep &= table["release_number"].astype(str).isin(cfg.releases)
        if cfg.c2_target not in table.columns:
            # Challenge 1 needs it too: the bundle's Challenge 2 slot holds its training mean.
            targets = [c for c in C2_TARGETS if c in table.columns]
            raise DataError(
                f"{source.url}/participants.tsv: no {cfg.c2_target!r} column (data.c2_target); "
                f"columns with Challenge 2 targets there: {', '.join(targets) or 'none'}"
            )
        if cfg.challenge == 2:
            has_target = table[cfg.c2_target].notna()
            skipped[f"no {cfg.c2_target} (n/a)"] += int((keep & ~has_target).sum())
            keep &= has_target
        chosen = table[keep]
        if chosen.empty:
            raise DataError(
                f"{source.url}: no subject of release {release or '/'.join(cfg.releases) or 'any'}"
                f" has {cfg.task} "
                + (f"and {cfg.c2_target} " if cfg.challenge == 2 else "")
                + "in participants.tsv"
            )
        scores = chosen[cfg.c2_target] if cfg.c2_target in chosen.columns else None
        for subject in chosen.index:
            score = float(scores[subject]) if scores is not None else float("nan")
            found.append(Candidate(subject, release, source, score))
    return found


def _c2_train_mean(values: list[float], column: str) -> float:
    """The mean Challenge 2 score of the training subjects (the baseline of a C1 bundle)."""
    known = [v for v in values if np.isfinite(v)]
    if not known:
        raise DataError(
            f"no training subject has a {column!r} score in participants.tsv (all n/a), so the "
            "Challenge 2 baseline is unknown; choose another data.c2_target"
        )
    return float(np.mean(known))


class WindowDataset(Dataset):
    """Windows from memory-mapped cache blocks; optional crop (random in training, else centre)."""

    def __init__(self, blocks: list[np.ndarray], targets: list[np.ndarray], crop: int | None,
                 random_crop: bool):  # fmt: skip
        self.blocks = blocks
        self.targets = np.concatenate(targets).astype(np.float32) if targets else np.empty(0)
        self.index = np.concatenate(
            [np.stack([np.full(len(b), i), np.arange(len(b))], 1) for i, b in enumerate(blocks)]
        ) if blocks else np.empty((0, 2), int)  # fmt: skip
        self.crop = crop
        self.random_crop = random_crop

    def __len__(self) -> int:
        return len(self.index)

    def window(self, k: int) -> np.ndarray:
        block, row = self.index[k]
        x = self.blocks[block][row]
        if self.crop is not None and self.crop < x.shape[-1]:
            room = x.shape[-1] - self.crop
            start = int(torch.randint(0, room + 1, ()).item()) if self.random_crop else room // 2
            x = x[:, start : start + self.crop]
        return np.array(x, dtype=np.float32)

    def __getitem__(self, k: int) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.from_numpy(self.window(k)), torch.tensor([self.targets[k]])

    def __getitems__(self, ks: list[int]) -> tuple[torch.Tensor, torch.Tensor]:
        """A whole batch at once (the DataLoader's batched fetch): each window's crop is copied
        straight from its memory map into one batch array. Returns the collated (X, y)."""
        ks = np.asarray(ks, dtype=int)
        blocks, rows = self.index[ks, 0], self.index[ks, 1]
        first = self.blocks[blocks[0]]
        n_times = first.shape[-1]
        size = self.crop if self.crop is not None and self.crop < n_times else n_times
        out = np.empty((len(ks), first.shape[1], size), dtype=np.float32)
        room = n_times - size
        if self.random_crop and room:
            starts = torch.randint(0, room + 1, (len(ks),)).numpy()
        else:
            starts = np.full(len(ks), room // 2)
        for i, (block, row, start) in enumerate(zip(blocks, rows, starts, strict=True)):
            out[i] = self.blocks[block][row, :, start : start + size]
        y = torch.from_numpy(self.targets[ks]).unsqueeze(1)
        return torch.from_numpy(out), y


def collate_batch(batch):
    """`WindowDataset.__getitems__` returns collated batches: pass them through."""
    return batch


class EEG2025DataModule(L.LightningDataModule):
    """Windows of the selected subjects, split by subject into train and validation."""

    def __init__(self, cfg: EEG2025Data, batch_size: int, settings: Settings, seed: int):
        super().__init__()
        self.cfg = cfg
        self.batch_size = batch_size
        self.settings = settings
        self.seed = seed
        self.data_seed = cfg.split_seed if cfg.split_seed is not None else seed
        self.stats: dict[str, Any] = {}
        self._ready = False

    def _select(self, skipped: Counter) -> list[tuple[Candidate, list[Recording]]]:
        cfg = self.cfg
        candidates = _candidates(cfg, self.settings, skipped)
        order = np.random.default_rng(self.data_seed).permutation(len(candidates))
        picked = []
        for i in order:
            cand = candidates[i]
            recordings = subject_recordings(cand.source, cand.subject, cfg.task)
            if not recordings:
                skipped["no recording"] += 1
                continue
            picked.append((cand, recordings))
            if cfg.max_subjects is not None and len(picked) >= cfg.max_subjects:
                break
        return sorted(picked, key=lambda p: p[0].subject)

    def setup(self, stage: str | None = None) -> None:
        if self._ready:
            return
        cfg = self.cfg
        skipped: Counter = Counter()
        cache = ArrayCache(self.settings.cache_dir / "windows")
        scores: dict[str, float] = {}
        blocks: dict[str, list[np.ndarray]] = {}
        targets: dict[str, list[np.ndarray]] = {}
        sources = set()
        read = DataFingerprint(self.settings)
        for cand, recordings in self._select(skipped):
            sources.add(cand.source.url)
            scores[cand.subject] = cand.c2_score
            read.read(cand.source, "participants.tsv")
            for rec in recordings:
                read.read(cand.source, rec.eeg, *([rec.events] if cfg.challenge == 1 else []))
                entry = recording_windows(cand.source, rec, cfg, cache)
                if entry.skipped:
                    skipped[entry.skipped] += 1
                    continue
                X = entry.arrays["X"]
                y = entry.arrays["y"] if cfg.challenge == 1 else np.full(len(X), cand.c2_score)
                blocks.setdefault(cand.subject, []).append(X)
                targets.setdefault(cand.subject, []).append(np.asarray(y, np.float32))
        skipped = +skipped  # drop zero counts
        for reason, count in sorted(skipped.items()):
            log.warning("skipped %d: %s", count, reason)
        usable = sorted(blocks)
        # Challenge 2 scores subjects: nRMSE needs at least two of them to have a spread.
        min_val = 1 if cfg.challenge == 1 else 2
        if len(usable) < 1 + min_val:
            raise DataError(
                f"{', '.join(sorted(sources)) or cfg.source}: {len(usable)} subject(s) with usable "
                f"windows after filtering (skipped: {dict(skipped) or 'none'}); need at least "
                f"{1 + min_val}"
            )
        train_s, val_s = split_subjects(usable, cfg.val_fraction, self.data_seed, min_val)
        crop = round(cfg.c2_window.crop * SFREQ) if cfg.challenge == 2 else None

        def dataset(subjects: list[str], random_crop: bool) -> WindowDataset:
            return WindowDataset(
                [b for s in subjects for b in blocks[s]],
                [t for s in subjects for t in targets[s]],
                crop,
                random_crop,
            )

        self.train_set, self.val_set = dataset(train_s, True), dataset(val_s, False)
        y_train = self.train_set.targets
        windows = cfg.window if cfg.challenge == 1 else cfg.c2_window
        preprocessing = {
            "sfreq": SFREQ, "band": BAND, "reference": REFERENCE,
            "windows": windows.model_dump(), "windows_version": WINDOWS_VERSION,
        }  # fmt: skip
        generator = None if cfg.source != "synthetic" else {
            "name": "eeg2025.synth", "version": SYNTH_VERSION, **cfg.synthetic.model_dump()
        }  # fmt: skip
        self.stats = {
            "sources": sorted(sources),
            "challenge": cfg.challenge,
            "n_chans": int(blocks[usable[0]][0].shape[1]),
            "n_times": crop or int(blocks[usable[0]][0].shape[2]),
            "sfreq": SFREQ,
            "target": "rt_from_stimulus" if cfg.challenge == 1 else cfg.c2_target,
            "target_mean": float(y_train.mean()),
            "target_std": float(y_train.std() or 1.0),
            "train_windows": len(self.train_set),
            "val_windows": len(self.val_set),
            "train_subjects": train_s,
            "val_subjects": val_s,
            "skipped": dict(sorted(skipped.items())),
            "window_cache": {"hits": cache.hits, "built": cache.misses, "root": str(cache.root)},
            "c2_target": cfg.c2_target,
            # per subject, not per window: the challenge 2 baseline of a challenge 1 bundle
            "c2_train_mean": _c2_train_mean([scores[s] for s in train_s], cfg.c2_target),
            FINGERPRINT: read.as_dict(preprocessing=preprocessing, generator=generator),
        }
        self._ready = True

    def _loader(self, data: WindowDataset, shuffle: bool) -> DataLoader:
        # Training: in (seed, epoch) order and resumable mid-epoch (toolkit.data.loaders).
        loader = ResumableLoader if shuffle else DataLoader
        extra = {"seed": self.seed} if shuffle else {}
        return loader(
            data,
            batch_size=self.batch_size,
            num_workers=self.settings.num_workers,
            persistent_workers=self.settings.num_workers > 0,
            collate_fn=collate_batch,
            **extra,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_set, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val_set, shuffle=False)

    def reference_inputs(self, n: int) -> np.ndarray:
        """Validation windows used to check exported models against the eager one."""
        return np.stack([self.val_set.window(k) for k in range(min(n, len(self.val_set)))])

    def baselines(self, y_true: np.ndarray) -> dict[str, np.ndarray]:
        """Predictions of trivial models, scored beside ours in metrics.json."""
        return {"train_mean": np.full_like(y_true, self.stats["target_mean"])}
