"""The crosssucking datamodule: manifests -> checked events -> split -> frames decoded once
into the array cache; training clips augmented and class-balanced; validation batches are each
event's centre clip (val_loss); the evaluate hook scores `val_events` with N clips per event."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, TensorDataset, WeightedRandomSampler

from toolkit.competitions.crosssucking.augment import training_clip
from toolkit.competitions.crosssucking.cache import EventFrames
from toolkit.competitions.crosssucking.config import CrossSuckingData
from toolkit.competitions.crosssucking.events import (
    ClipEvent,
    LoadReport,
    label_counts,
    load_events,
    manifest_path,
)
from toolkit.competitions.crosssucking.splits import format_report, split_events, split_report
from toolkit.competitions.crosssucking.standalone import PyAVReader, event_clips
from toolkit.competitions.crosssucking.synth import write_synthetic
from toolkit.config.settings import Settings
from toolkit.data.sources import local_root, synthetic_root
from toolkit.errors import DataError, RecipeError

log = logging.getLogger(__name__)


def data_root(cfg: CrossSuckingData, settings: Settings) -> Path:
    """The data root: synthetic videos (made once, cached) or a local folder."""
    if cfg.source == "synthetic":
        params = cfg.synthetic.model_dump()
        return synthetic_root(
            settings, "crosssucking", params, lambda root: write_synthetic(root, **params)
        )
    return local_root(cfg.source, settings)


def predict_settings(cfg: CrossSuckingData) -> dict[str, Any]:
    """What predict.py needs (model.json) and the toolkit's evaluation uses: one source."""
    return {**cfg.clip.model_dump(), **cfg.tta.model_dump(), "time_unit": cfg.time_unit}


class TrainClips(Dataset):
    """One augmented clip per event per access."""

    def __init__(
        self, events: list[ClipEvent], frames: dict[str, np.ndarray], cfg: CrossSuckingData
    ):
        self.events, self.frames, self.cfg = events, frames, cfg

    def __len__(self) -> int:
        return len(self.events)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        event = self.events[index]
        x = training_clip(self.frames[event.frames_key], self.cfg.clip, self.cfg.augment)
        return x, torch.tensor(event.label)


class CrossSuckingDataModule(L.LightningDataModule):
    """Events of the train/val (and test) manifests, their frames from the array cache."""

    def __init__(self, cfg: CrossSuckingData, batch_size: int, settings: Settings, seed: int):
        super().__init__()
        self.cfg, self.batch_size, self.settings, self.seed = cfg, batch_size, settings, seed
        self.stats: dict[str, Any] = {}
        self.frames: dict[str, np.ndarray] = {}
        self.train_events: list[ClipEvent] = []
        self.val_events: list[ClipEvent] = []
        self.test_events: list[ClipEvent] = []
        self.settings_for_predict = predict_settings(cfg)
        self.pretrained: str | None = None  # model.kwargs.weights, resolved by the competition
        self._ready = False

    def setup(self, stage: str | None = None) -> None:
        if self._ready:
            return
        cfg = self.cfg
        root = data_root(cfg, self.settings)
        reader = PyAVReader()
        report = LoadReport()

        def load(name: str | None) -> list[ClipEvent] | None:
            if name is None:
                return None
            return load_events(manifest_path(root, name), root, cfg.time_unit, reader, report)

        pool, given_val, test = (
            load(cfg.train_manifest),
            load(cfg.val_manifest),
            load(cfg.test_manifest),
        )
        assert pool is not None
        train, val = split_events(pool, given_val, cfg.split)
        frames = EventFrames(
            self.settings.cache_dir / "crosssucking-frames", cfg.clip.short_side, reader
        )
        sides = {"train": train, "val": val, "test": test or []}
        for name, events in sides.items():
            kept = []
            for event in events:
                base = event.frames_key
                if base not in self.frames:
                    array = frames.get(event)
                    if array is None:
                        continue
                    self.frames[base] = array
                kept.append(event)
            sides[name] = kept
        self.train_events, self.val_events, self.test_events = (
            sides["train"],
            sides["val"],
            sides["test"],
        )
        if not self.train_events or not self.val_events:
            side = "train" if not self.train_events else "validation"
            raise DataError(f"crosssucking: no decodable {side} event under {root}")
        self.split = split_report(
            {k: v for k, v in sides.items() if v or k != "test"}, cfg.split.kind
        )
        for line in format_report(self.split):
            log.info(line)
        counts = label_counts(self.train_events)
        weights = {k: (1.0 / v if v else 0.0) for k, v in counts.items()}
        log.info(
            "sampler: class counts %s, weights %s (balanced: %s)",
            counts,
            {k: round(v, 5) for k, v in weights.items()},
            cfg.balanced_sampler,
        )
        self._build_val()
        self.stats = {
            "data_root": str(root),
            "manifests": report.as_dict(),
            "decode_failed": frames.failed,
            "reseeked": reader.reseeks,
            "cache": {"hits": frames.cache.hits, "misses": frames.cache.misses},
            "split": self.split,
            "sampler": {
                "balanced": cfg.balanced_sampler,
                "class_counts": counts,
                "weights": weights,
            },
            "predict": self.settings_for_predict,
        }
        if self.pretrained is not None:
            if not Path(self.pretrained).is_file():
                raise RecipeError(
                    f"model.kwargs.weights: no such file {self.pretrained} (weights "
                    "are never downloaded; give a local r3d_18 state dict)"
                )
            self.stats["pretrained_weights"] = self.pretrained
        self._ready = True

    def _build_val(self) -> None:
        """One centre clip per validation event (the engine's val_loss and per-batch metric)."""
        x = np.concatenate([self.clips(e, 1) for e in self.val_events])
        self.X_val = torch.from_numpy(x)
        self.y_val = torch.tensor([e.label for e in self.val_events])

    def clips(self, event: ClipEvent, n_clips: int) -> np.ndarray:
        """An event's evenly spaced, centre-cropped clips, exactly as predict.py makes them."""
        return event_clips(self.frames[event.frames_key], self.settings_for_predict, n_clips)

    def train_dataloader(self) -> DataLoader:
        data = TrainClips(self.train_events, self.frames, self.cfg)
        generator = torch.Generator().manual_seed(self.seed)
        sampler = None
        if self.cfg.balanced_sampler:
            counts = label_counts(self.train_events)
            per_class = [1.0 / max(counts["ear"], 1), 1.0 / max(counts["tail"], 1)]
            weights = torch.tensor(
                [per_class[e.label] for e in self.train_events], dtype=torch.double
            )
            sampler = WeightedRandomSampler(
                weights, len(weights), replacement=True, generator=generator
            )
        return DataLoader(
            data,
            batch_size=self.batch_size,
            sampler=sampler,
            shuffle=sampler is None,
            generator=None if sampler is not None else generator,
            num_workers=self.settings.num_workers,
            drop_last=len(data) > self.batch_size,
        )

    def val_dataloader(self) -> DataLoader:
        return DataLoader(TensorDataset(self.X_val, self.y_val), batch_size=self.batch_size)

    def reference_inputs(self, n: int) -> np.ndarray:
        """Validation centre clips to check exported models."""
        return self.X_val[:n].numpy().copy()
