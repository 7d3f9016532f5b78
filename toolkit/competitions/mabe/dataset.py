"""Read a MABe data root (local or remote) into per-video arrays, cached on disk.

One cache entry per (video file, feature settings): `features` (S, F, D) float32 at the
common frame rate for the video's whitelisted streams, `labels` (S, F, A) int8 per action
(1 labelled, 0 whitelisted but not labelled, -1 not whitelisted), `missing` meta for the log.
"""

from __future__ import annotations

import io
import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from toolkit.competitions.mabe.config import MABeData
from toolkit.competitions.mabe.standalone import (
    FEATURE_VERSION,
    InputError,
    label_fps,
    mouse_index,
    mouse_name,
    parse_behaviors,
    read_tracking,
    video_features,
    whitelist_streams,
)
from toolkit.data.array_cache import ArrayCache
from toolkit.errors import DataError

if TYPE_CHECKING:
    from toolkit.data.remote import Source

log = logging.getLogger(__name__)


@dataclass
class Video:
    """One annotated video: its metadata, streams and cached arrays."""

    video_id: int
    lab: str
    behaviors: list[str]
    streams: list[tuple[str, str]]
    features: np.ndarray  # (S, F, D) float32, model frame rate
    labels: np.ndarray  # (S, F, A) int8
    fps: float  # tracking frame rate
    label_ratio: float  # label frames per model frame
    intervals: pd.DataFrame  # the annotation rows (label grid), ids normalised


def read_metadata(source: Source, split: str) -> pd.DataFrame:
    """train.csv / test.csv with the columns the pipeline needs checked."""
    name = f"{split}.csv"
    try:
        text = source.read_text(name)
    except DataError:
        raise
    except Exception as exc:
        raise DataError(f"{source.url}/{name}: cannot read ({exc})") from None
    try:
        table = pd.read_csv(io.StringIO(text))
    except pd.errors.EmptyDataError:
        raise DataError(f"{source.url}/{name}: empty file") from None
    needed = ("lab_id", "video_id", "frames_per_second", "pix_per_cm_approx", "behaviors_labeled")
    missing = [c for c in needed if c not in table.columns]
    if missing:
        raise DataError(f"{source.url}/{name}: missing column(s) {', '.join(missing)}")
    if table.empty:
        raise DataError(f"{source.url}/{name}: no videos")
    return table


def read_annotation(source: Source, rel: str) -> pd.DataFrame:
    """An annotation parquet with its five columns checked."""
    path = source.fetch(rel)
    try:
        frame = pd.read_parquet(path)
    except Exception as exc:
        raise DataError(f"{source.url}/{rel}: unreadable parquet ({exc})") from None
    cols = ("agent_id", "target_id", "action", "start_frame", "stop_frame")
    missing = [c for c in cols if c not in frame.columns]
    if missing:
        raise DataError(
            f"{source.url}/{rel}: missing column(s) {', '.join(missing)} "
            f"(has: {', '.join(frame.columns)})"
        )
    frame = frame[list(cols)].copy()
    frame["agent_id"] = frame["agent_id"].map(mouse_name)
    target = frame["target_id"].map(mouse_name)
    frame["target_id"] = target.where(target != frame["agent_id"], "self")
    return frame


def label_array(
    intervals: pd.DataFrame, streams: list[tuple[str, str]], behaviors: list[str],
    actions: list[str], n_frames: int, ratio: float,
) -> np.ndarray:  # fmt: skip
    """(S, F, A) int8: -1 not whitelisted, 0 whitelisted, 1 labelled (model frame grid)."""
    out = np.full((len(streams), n_frames, len(actions)), -1, np.int8)
    col = {a: i for i, a in enumerate(actions)}
    allowed = whitelist_streams(behaviors)
    row = {s: i for i, s in enumerate(streams)}
    for s, key in enumerate(streams):
        for action in allowed.get(key, []):
            if action in col:
                out[s, :, col[action]] = 0
    for r in intervals.itertuples(index=False):
        s = row.get((r.agent_id, r.target_id))
        c = col.get(r.action)
        if s is None or c is None or out[s, 0, c] < 0:
            continue
        start = int(np.floor(r.start_frame / ratio))
        stop = int(np.ceil(r.stop_frame / ratio))
        out[s, max(start, 0) : min(stop, n_frames), c] = 1
    return out


def stream_indices(streams: list[tuple[str, str]]) -> list[tuple[int, int]]:
    """(agent, target) names -> 0-based mouse indices (self: target = agent)."""
    return [
        (mouse_index(a), mouse_index(a) if t == "self" else mouse_index(t)) for a, t in streams
    ]


def load_video(
    source: Source, row: dict[str, Any], cfg: MABeData, actions: list[str], cache: ArrayCache,
    split: str = "train",
) -> Video | None:  # fmt: skip
    """A video's arrays (cached); None with a warning if it cannot be used."""
    video_id, lab = int(row["video_id"]), str(row["lab_id"])
    where = f"{split}_tracking/{lab}/{video_id}.parquet"
    try:
        behaviors = parse_behaviors(row.get("behaviors_labeled"), f"{split}.csv video {video_id}")
    except InputError as exc:
        log.warning("%s; video skipped", exc)
        return None
    streams = list(whitelist_streams(behaviors))
    if not streams:
        return None
    fps_in = float(row["frames_per_second"])
    ratio = label_fps(lab, fps_in, {"label_fps": cfg.label_fps}) / cfg.fps
    annotation_rel = f"{split}_annotation/{lab}/{video_id}.parquet"
    try:
        fingerprints = [source.fingerprint(where), source.fingerprint(annotation_rel)]
    except DataError as exc:
        log.warning("%s; video skipped", exc)
        return None
    parts = {
        "tracking": f"{source.url}/{where}", "fingerprints": fingerprints, "features": cfg.features,
        "fps": cfg.fps, "label_ratio": ratio, "streams": streams, "behaviors": behaviors,
        "actions": actions, "ppc": float(row["pix_per_cm_approx"]), "version": FEATURE_VERSION,
    }  # fmt: skip

    def build() -> tuple[dict[str, np.ndarray], dict[str, Any]]:
        try:
            tracking = read_tracking(source.fetch(where))
            warnings: list[str] = []
            feats = video_features(
                tracking, kind=cfg.features, fps_in=fps_in, fps=cfg.fps,
                ppc=float(row["pix_per_cm_approx"]), streams=stream_indices(streams),
                warn=warnings.append, where=where,
            )  # fmt: skip
        except (InputError, DataError) as exc:
            return {}, {"skipped": str(exc)}
        for message in warnings:
            log.warning(message)
        intervals = read_annotation(source, annotation_rel)
        labels = label_array(intervals, streams, behaviors, actions, feats.shape[1], ratio)
        return {"features": feats, "labels": labels}, {"warnings": warnings}

    entry = cache.get_or_build(parts, build)
    if entry.skipped:
        log.warning("%s; video skipped", entry.skipped)
        return None
    return Video(
        video_id=video_id, lab=lab, behaviors=behaviors, streams=streams,
        features=entry.arrays["features"], labels=entry.arrays["labels"], fps=fps_in,
        label_ratio=ratio, intervals=read_annotation(source, annotation_rel),
    )  # fmt: skip


def solution_frame(videos: list[Video]) -> pd.DataFrame:
    """The label intervals of `videos` as the metric's solution table."""
    import json

    parts = [
        v.intervals.assign(video_id=v.video_id, lab_id=v.lab,
                           behaviors_labeled=json.dumps(v.behaviors))
        for v in videos
    ]
    if not parts:
        return pd.DataFrame()
    return pd.concat(parts, ignore_index=True)
