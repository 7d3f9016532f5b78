"""The eeg2025 datamodule: subjects selected and split by subject, windows held in memory."""

from __future__ import annotations

import logging
from typing import Any

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, TensorDataset

from toolkit.competitions.eeg2025.bids import find_recordings, read_participants
from toolkit.competitions.eeg2025.config import EEG2025Data
from toolkit.competitions.eeg2025.synth import write_synthetic_bids
from toolkit.competitions.eeg2025.windows import build_windows
from toolkit.config.settings import Settings
from toolkit.data.sources import local_root, synthetic_root
from toolkit.errors import DataError

log = logging.getLogger(__name__)


def resolve_root(cfg: EEG2025Data, settings: Settings):
    """The local BIDS root for `data.source` (synthetic data is made once and cached)."""
    if cfg.source == "synthetic":
        params = {**cfg.synthetic.model_dump(), "task": cfg.task}
        return synthetic_root(
            settings,
            "eeg2025",
            params,
            lambda root: write_synthetic_bids(root, **cfg.synthetic.model_dump(), task=cfg.task),
        )
    return local_root(cfg.source, settings)


def split_subjects(subjects: list[str], val_fraction: float, seed: int) -> tuple[list, list]:
    """Deterministic subject-grouped split: no subject on both sides."""
    order = np.random.default_rng(seed).permutation(sorted(subjects))
    n_val = min(max(1, round(len(order) * val_fraction)), len(order) - 1)
    return sorted(order[n_val:].tolist()), sorted(order[:n_val].tolist())


class EEG2025DataModule(L.LightningDataModule):
    """Challenge 1 windows of the selected subjects, split by subject into train and validation."""

    def __init__(self, cfg: EEG2025Data, batch_size: int, settings: Settings, seed: int):
        super().__init__()
        self.cfg = cfg
        self.batch_size = batch_size
        self.settings = settings
        self.seed = seed
        self.stats: dict[str, Any] = {}
        self._ready = False

    def setup(self, stage: str | None = None) -> None:
        if self._ready:
            return
        cfg = self.cfg
        root = resolve_root(cfg, self.settings)
        participants = read_participants(root)
        recordings = find_recordings(root, cfg.task)
        if not recordings:
            raise DataError(f"{root}: no sub-*/eeg/*_task-{cfg.task}*_eeg.set or .bdf files")
        subjects = sorted({r.subject for r in recordings})
        if cfg.releases:
            keep = set(participants.index[participants["release_number"].isin(cfg.releases)])
            subjects = [s for s in subjects if s in keep]
        if cfg.max_subjects is not None and len(subjects) > cfg.max_subjects:
            picked = np.random.default_rng(self.seed).choice(subjects, cfg.max_subjects, False)
            subjects = sorted(picked.tolist())
        chosen = set(subjects)
        windows = build_windows([r for r in recordings if r.subject in chosen], cfg.window)
        skipped = {reason: len(files) for reason, files in windows.skipped.items()}
        for reason, files in windows.skipped.items():
            log.warning("skipped %d recording(s): %s (first: %s)", len(files), reason, files[0])
        usable = sorted(set(windows.subjects.tolist()))
        if len(usable) < 2:
            raise DataError(
                f"{root}: {len(usable)} subject(s) with usable trials after filtering "
                f"(skipped recordings: {skipped or 'none'}); need at least 2 to split"
            )
        train_s, val_s = split_subjects(usable, cfg.val_fraction, self.seed)
        train_mask = np.isin(windows.subjects, train_s)
        self.X_train, self.y_train = windows.X[train_mask], windows.y[train_mask]
        self.X_val, self.y_val = windows.X[~train_mask], windows.y[~train_mask]
        c2 = participants.loc[participants.index.isin(train_s), cfg.c2_target].dropna()
        self.stats = {
            "root": str(root),
            "n_chans": int(windows.X.shape[1]),
            "n_times": int(windows.X.shape[2]),
            "sfreq": 100,
            "target": "rt_from_stimulus",
            "target_mean": float(self.y_train.mean()),
            "target_std": float(self.y_train.std() or 1.0),
            "train_windows": int(train_mask.sum()),
            "val_windows": int((~train_mask).sum()),
            "train_subjects": train_s,
            "val_subjects": val_s,
            "skipped_recordings": skipped,
            "c2_target": cfg.c2_target,
            "c2_train_mean": float(c2.mean()) if len(c2) else 0.0,
            "c2_train_subjects_with_target": len(c2),
        }
        self._ready = True

    def _loader(self, X: np.ndarray, y: np.ndarray, shuffle: bool) -> DataLoader:
        data = TensorDataset(torch.from_numpy(X), torch.from_numpy(y).unsqueeze(1))
        return DataLoader(
            data,
            batch_size=self.batch_size,
            shuffle=shuffle,
            generator=torch.Generator().manual_seed(self.seed) if shuffle else None,
            num_workers=self.settings.num_workers,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.X_train, self.y_train, shuffle=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.X_val, self.y_val, shuffle=False)

    def reference_inputs(self, n: int) -> np.ndarray:
        """Validation windows used to check exported models against the eager one."""
        return self.X_val[:n].copy()

    def baselines(self, y_true: np.ndarray) -> dict[str, np.ndarray]:
        """Predictions of trivial models, scored beside ours in metrics.json."""
        return {"train_mean": np.full_like(y_true, self.stats["target_mean"])}
