"""The mabe datamodule: windows of T frames per (video, agent, target) stream; targets per
action (or per coarse group), -1 where the video's whitelist does not cover them.

Validation videos are held out whole, stratified by lab (a fraction, or fold k of n)."""

from __future__ import annotations

import logging
from typing import Any

import lightning as L
import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from toolkit.competitions.mabe.config import MABeData
from toolkit.competitions.mabe.dataset import Video, load_video, read_metadata, solution_frame
from toolkit.competitions.mabe.standalone import parse_behaviors, window_starts
from toolkit.competitions.mabe.synth import LABEL_FPS, SYNTH_VERSION, write_synthetic
from toolkit.config.settings import Settings
from toolkit.data.array_cache import ArrayCache
from toolkit.data.fingerprint import KEY as FINGERPRINT
from toolkit.data.fingerprint import DataFingerprint
from toolkit.data.loaders import ResumableLoader
from toolkit.data.remote import open_source
from toolkit.data.sources import synthetic_root
from toolkit.errors import DataError, RecipeError

log = logging.getLogger(__name__)


def data_root(cfg: MABeData, settings: Settings) -> str:
    """The data root as a source string: a folder / s3:// URL, or the cached synthetic data."""
    if cfg.source != "synthetic":
        return cfg.source
    params = cfg.synthetic.model_dump()
    key = {**params, "generator": SYNTH_VERSION}  # a changed generator makes fresh data
    root = synthetic_root(settings, "mabe", key, lambda r: write_synthetic(r, **params))
    return str(root)


def label_fps_for(cfg: MABeData) -> dict[str, float]:
    """The recipe's label grids, plus the synthetic lab's when the data is synthetic."""
    return {**(LABEL_FPS if cfg.source == "synthetic" else {}), **cfg.label_fps}


def split_videos(labs: list[str], cfg: MABeData) -> np.ndarray:
    """Boolean validation mask over videos: grouped by video, stratified by lab."""
    rng = np.random.default_rng(cfg.split_seed)
    val = np.zeros(len(labs), bool)
    for lab in sorted(set(labs)):
        idx = rng.permutation([i for i, x in enumerate(labs) if x == lab])
        if cfg.n_folds is not None:
            if cfg.fold >= cfg.n_folds:
                raise RecipeError(f"data.fold={cfg.fold}: must be below data.n_folds")
            val[idx[cfg.fold :: cfg.n_folds]] = True
        elif len(idx) > 1:
            val[idx[: max(1, round(len(idx) * cfg.val_fraction))]] = True
    if val.all() or not val.any():
        raise DataError(
            f"mabe: cannot hold out validation videos from {len(labs)} annotated video(s) "
            "(need at least two in some lab)"
        )
    return val


def group_targets(labels: np.ndarray, actions: list[str], groups: dict[str, list[str]]):
    """(S, F, A) action targets -> (S, F, G) coarse targets; `background` is 1 where no
    whitelisted action is labelled (valid wherever any action is whitelisted)."""
    out = np.full((*labels.shape[:2], len(groups)), -1, np.int8)
    valid_any = (labels >= 0).any(-1)
    positive_any = (labels > 0).any(-1)
    for g, (name, members) in enumerate(groups.items()):
        cols = [i for i, a in enumerate(actions) if a in members]
        if name == "background":
            out[..., g] = np.where(valid_any, (~positive_any).astype(np.int8), -1)
        elif cols:
            sub = labels[..., cols]
            out[..., g] = np.where((sub >= 0).any(-1), (sub > 0).any(-1).astype(np.int8), -1)
    return out


class Windows(Dataset):
    """(features (D, T), targets (T, C)) windows; padding frames get targets -1."""

    def __init__(self, videos: list[Video], targets: list[np.ndarray], window: int, stride: int):
        self.videos, self.targets, self.window = videos, targets, window
        self.items = [
            (v, s, t)
            for v, video in enumerate(videos)
            for s in range(len(video.streams))
            for t in window_starts(video.features.shape[1], window, stride)
        ]

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        v, s, t = self.items[index]
        feats = self.videos[v].features[s, t : t + self.window]
        target = self.targets[v][s, t : t + self.window]
        x = np.zeros((feats.shape[1], self.window), np.float32)
        x[:, : len(feats)] = feats.T
        y = np.full((self.window, target.shape[1]), -1, np.float32)
        y[: len(target)] = target
        return torch.from_numpy(x), torch.from_numpy(y)


class MABeDataModule(L.LightningDataModule):
    """Annotated videos -> training and validation windows; `val_videos` and `solution` for
    the competition's own evaluation."""

    def __init__(self, cfg: MABeData, batch_size: int, settings: Settings, seed: int):
        super().__init__()
        self.cfg = cfg
        self.batch_size = batch_size
        self.settings = settings
        self.seed = seed
        self.stats: dict[str, Any] = {}
        self._ready = False

    def _annotated(self, table) -> tuple[list[dict[str, Any]], list[str]]:
        """The annotated rows this recipe trains on, and the actions of EVERY annotated row
        (one output space whatever `labs` selects, so per-lab ensemble members agree)."""
        cfg = self.cfg
        rows, actions = [], set()
        for row in table.to_dict("records"):
            lab = str(row["lab_id"])
            try:
                behaviors = parse_behaviors(row["behaviors_labeled"], f"video {row['video_id']}")
            except ValueError as exc:
                log.warning("%s; video skipped", exc)
                continue
            actions |= {e.split(",")[2] for e in behaviors}
            if (cfg.labs is not None and lab not in cfg.labs) or lab in cfg.exclude_labs:
                continue
            if behaviors:
                rows.append(row)
        return (rows[: cfg.max_videos] if cfg.max_videos else rows), sorted(actions)

    def setup(self, stage: str | None = None) -> None:
        if self._ready:
            return
        cfg = self.cfg.model_copy(update={"label_fps": label_fps_for(self.cfg)})
        self.root = data_root(cfg, self.settings)
        self.source = open_source(self.root, self.settings, cfg.cache)
        rows, actions = self._annotated(read_metadata(self.source, "train"))
        if len(rows) < 2:
            raise DataError(f"{self.source.url}/train.csv: fewer than two annotated videos "
                            "after data.labs / exclude_labs / max_videos")  # fmt: skip
        cache = ArrayCache(self.settings.cache_dir / "mabe-features")
        loaded = [load_video(self.source, r, cfg, actions, cache) for r in rows]
        videos = [v for v in loaded if v is not None]
        if len(videos) < 2:
            raise DataError(f"{self.source.url}: fewer than two usable annotated videos")
        if cfg.targets == "coarse":
            outputs = list(cfg.coarse_groups)
            targets = [group_targets(np.asarray(v.labels), actions, cfg.coarse_groups)
                       for v in videos]  # fmt: skip
        else:
            outputs, targets = actions, [v.labels for v in videos]
        weights = cfg.loss.class_weights
        if weights is not None and len(weights) != len(outputs):
            raise RecipeError(f"data.loss.class_weights has {len(weights)} values for "
                              f"{len(outputs)} outputs ({', '.join(outputs)})")  # fmt: skip
        val = split_videos([v.lab for v in videos], cfg)
        self.train_videos = [v for v, h in zip(videos, val, strict=True) if not h]
        self.val_videos = [v for v, h in zip(videos, val, strict=True) if h]
        train_targets = [t for t, h in zip(targets, val, strict=True) if not h]
        val_targets = [t for t, h in zip(targets, val, strict=True) if h]
        read = DataFingerprint(self.settings)
        read.read(self.source, "train.csv")
        for v in videos:
            read.read(self.source, f"train_tracking/{v.lab}/{v.video_id}.parquet",
                      f"train_annotation/{v.lab}/{v.video_id}.parquet")  # fmt: skip
        generator = ({"name": "mabe.synth", "version": SYNTH_VERSION, **cfg.synthetic.model_dump()}
                     if cfg.source == "synthetic" else None)  # fmt: skip
        preprocessing = cfg.model_dump(
            include={"features", "targets", "fps", "label_fps", "window", "stride"}
        )
        self.train_set = Windows(self.train_videos, train_targets, cfg.window, cfg.stride)
        self.val_set = Windows(self.val_videos, val_targets, cfg.window, cfg.window)
        self.solution = solution_frame(self.val_videos)
        positives = {a: int(sum((v.labels[..., i] > 0).sum() for v in self.train_videos))
                     for i, a in enumerate(actions)}  # fmt: skip
        mean, std = _feature_moments(self.train_videos)
        self.stats = {
            "features": cfg.features,
            "n_features": int(videos[0].features.shape[2]),
            "outputs": outputs,
            "actions": actions,
            "groups": cfg.coarse_groups if cfg.targets == "coarse" else None,
            "action_priority": sorted(actions, key=lambda a: -positives[a]),
            "positive_frames": positives,
            "feature_mean": mean,
            "feature_std": std,
            "fps": cfg.fps,
            "label_fps": cfg.label_fps,
            "window": cfg.window,
            "predict_stride": cfg.predict_stride,
            "labs": sorted({v.lab for v in videos}),
            "train_videos": [v.video_id for v in self.train_videos],
            "val_videos": [v.video_id for v in self.val_videos],
            "val_subjects": [v.video_id for v in self.val_videos],
            "train_windows": len(self.train_set),
            "val_windows": len(self.val_set),
            "skipped_videos": len(rows) - len(videos),
            "source": self.source.url,
            FINGERPRINT: read.as_dict(preprocessing=preprocessing, generator=generator),
        }
        self._ready = True

    def train_dataloader(self) -> DataLoader:
        # In (seed, epoch) order and resumable mid-epoch (toolkit.data.loaders).
        return ResumableLoader(self.train_set, batch_size=self.batch_size, seed=self.seed,
                               num_workers=self.settings.num_workers)  # fmt: skip

    def val_dataloader(self) -> DataLoader:
        return DataLoader(self.val_set, batch_size=self.batch_size)

    def reference_inputs(self, n: int) -> np.ndarray:
        """Validation windows (B, D, T) to check exported models."""
        return np.stack([self.val_set[i][0].numpy() for i in range(min(n, len(self.val_set)))])

    def baselines(self, y_true: np.ndarray) -> dict[str, np.ndarray]:
        """Frame-level baselines: nothing predicted; the most frequent output everywhere."""
        nothing = np.full(y_true.shape, -10.0, np.float32)
        counts = (y_true > 0).sum(axis=(0, 1))
        if self.stats.get("groups"):
            counts[0] = -1  # background is not an action
        frequent = nothing.copy()
        frequent[..., int(np.argmax(counts))] = 10.0
        return {"nothing": nothing, "most_frequent": frequent}


def _feature_moments(videos: list[Video], max_frames: int = 200_000) -> tuple[list, list]:
    """Per-feature mean and std over (a sample of) the training frames."""
    rng = np.random.default_rng(0)
    chunks = []
    per_video = max(1, max_frames // max(len(videos), 1))
    for v in videos:
        flat = np.asarray(v.features).reshape(-1, v.features.shape[2])
        take = rng.choice(len(flat), size=min(per_video, len(flat)), replace=False)
        chunks.append(flat[np.sort(take)])
    sample = np.concatenate(chunks).astype(np.float64)
    return sample.mean(0).round(6).tolist(), np.maximum(sample.std(0), 1e-3).round(6).tolist()


def frame_f1(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Mean over outputs with labelled frames of the frame-level F1 of (logit > 0), on
    whitelisted frames only: the fast validation signal (the real metric is `evaluate`)."""
    valid = y_true >= 0
    pos = (y_true > 0) & valid
    pred = (y_pred > 0) & valid
    tp = (pos & pred).sum(axis=(0, 1))
    fp = (~pos & pred & valid).sum(axis=(0, 1))
    fn = (pos & ~pred).sum(axis=(0, 1))
    has = pos.sum(axis=(0, 1)) > 0
    if not has.any():
        return 0.0
    f1 = 2 * tp / np.maximum(2 * tp + fp + fn, 1)
    return float(f1[has].mean())
