#!/usr/bin/env python3
"""MABe 2025 predictor: DATA_ROOT (test.csv + test_tracking/) -> submission.csv, with numpy,
pandas (+ pyarrow for parquet) and onnxruntime only.

    python predict.py DATA_ROOT OUT/submission.csv [--device auto|cpu|cuda]

For every video of test.csv: read its tracking parquet (long format; missing rows and NaN
coordinates are interpolated), resample it to the model's frame rate, compute one feature
stream per whitelisted (agent, target) pair (self actions: target = agent), run the ONNX model
over overlapping windows, then post-process: per (lab, action) thresholds, temporal smoothing,
ONE action per (agent, target) frame (the best probability minus threshold), gap filling,
minimum duration, whitelist filtering. Intervals are mapped back to the lab's label frame grid.
A video that fails gets no rows and one warning line on stderr; the others are kept. The file is
written atomically. By construction no two actions of one (agent, target) share a frame.

The toolkit imports this same file for feature extraction, training-time evaluation and
threshold tuning, so training and the bundle share one implementation (the bundle's copy is
`predict.py`, beside model.json, postprocess.json and the ONNX model(s)).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import tempfile
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

FEATURE_VERSION = 1
TRACKING_COLUMNS = ("video_frame", "mouse_id", "bodypart", "x", "y")
SUBMISSION_COLUMNS = (
    "row_id", "video_id", "agent_id", "target_id", "action", "start_frame", "stop_frame",
)  # fmt: skip
MAX_MICE = 4
# The common skeleton every lab can supply (directly or through fallbacks).
SKELETON = ("nose", "ear_left", "ear_right", "body_center", "tail_base")
FALLBACKS: dict[str, tuple[tuple[str, ...], ...]] = {
    "nose": (("nose",), ("head",), ("headpiece_topfrontleft", "headpiece_topfrontright")),
    "ear_left": (("ear_left",), ("head",)),
    "ear_right": (("ear_right",), ("head",)),
    "body_center": (
        ("body_center",), ("hip_left", "hip_right"), ("lateral_left", "lateral_right"),
        ("spine_1", "spine_2"), ("neck", "tail_base"),
    ),
    "tail_base": (("tail_base",), ("hip_left", "hip_right")),
}  # fmt: skip
# The users' plan: 18 keypoints per mouse, coordinates + speed + acceleration (4 x 18 x 4 = 288).
MOTION_PARTS = (
    "nose", "head", "ear_left", "ear_right", "neck", "body_center", "lateral_left",
    "lateral_right", "hip_left", "hip_right", "spine_1", "spine_2", "tail_base",
    "tail_midpoint", "tail_tip", "forepaw_left", "forepaw_right", "hindpaw_left",
)  # fmt: skip
PAIR_FEATURES = 45
MOTION_FEATURES = MAX_MICE * len(MOTION_PARTS) * 4

Warn = Callable[[str], None]
# A model: windows (B, D, T) float32 -> logits (B, T, C) float32.
Forward = Callable[[np.ndarray], np.ndarray]


class InputError(ValueError):
    """Input that cannot be used (a missing file or column, an unreadable whitelist)."""


# --------------------------------------------------------------------------- metadata


def mouse_name(value: Any) -> str:
    """`mouse3` for 3, '3' or 'mouse3'."""
    text = str(value).strip()
    return text if text.startswith("mouse") else f"mouse{int(float(text))}"


def parse_behaviors(value: Any, where: str) -> list[str]:
    """A video's whitelist as unique `agent,target,action` strings, in order.

    Accepts a JSON list string (stray ' and " inside elements are stripped, duplicates
    dropped) or a list; missing (None/NaN/'') is an empty list; anything else is InputError."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return []
    items = value
    if isinstance(value, str):
        if not value.strip():
            return []
        try:
            items = json.loads(value)
        except json.JSONDecodeError:
            raise InputError(
                f"{where}: behaviors_labeled is not a JSON list: {value[:60]!r}"
            ) from None
    if not isinstance(items, list | tuple | np.ndarray):
        raise InputError(f"{where}: behaviors_labeled is not a list: {str(value)[:60]!r}")
    out: list[str] = []
    for item in items:
        parts = [p.strip().strip("'\"").strip() for p in str(item).replace('"', "'").split(",")]
        parts = [p for p in parts if p]
        if len(parts) != 3:
            raise InputError(
                f"{where}: behaviors_labeled entry {item!r} is not agent,target,action"
            )
        agent, target, action = parts
        if not agent.startswith("mouse") or not (target == "self" or target.startswith("mouse")):
            raise InputError(f"{where}: behaviors_labeled entry {item!r} names no mouse")
        key = f"{agent},{target},{action}"
        if key not in out:
            out.append(key)
    return out


def whitelist_streams(behaviors: list[str]) -> dict[tuple[str, str], list[str]]:
    """(agent, target) -> whitelisted actions, in the whitelist's order."""
    streams: dict[tuple[str, str], list[str]] = {}
    for entry in behaviors:
        agent, target, action = entry.split(",")
        streams.setdefault((agent, target), []).append(action)
    return streams


def mouse_index(name: str) -> int:
    """0-based index of `mouseN`."""
    return int(name.removeprefix("mouse")) - 1


# --------------------------------------------------------------------------- tracking


def read_tracking(path: Path) -> pd.DataFrame:
    """A tracking parquet with its five columns checked (InputError names what is missing)."""
    if not Path(path).is_file():
        raise InputError(f"{path}: tracking file not found")
    try:
        frame = pd.read_parquet(path)
    except Exception as exc:
        raise InputError(f"{path}: unreadable parquet ({type(exc).__name__}: {exc})") from None
    missing = [c for c in TRACKING_COLUMNS if c not in frame.columns]
    if missing:
        raise InputError(
            f"{path}: missing column(s) {', '.join(missing)} (has: {', '.join(frame.columns)})"
        )
    if frame.empty:
        raise InputError(f"{path}: no tracking rows")
    return frame


def pose_array(frame: pd.DataFrame, parts: Iterable[str], n_frames: int | None = None):
    """(F, 4 mice, P parts, 2) float32 pixels, NaN where untracked (missing rows or NaN)."""
    parts = list(parts)
    frames = frame["video_frame"].to_numpy(np.int64)
    mice = frame["mouse_id"].to_numpy(np.int64) - 1
    codes, names = pd.factorize(frame["bodypart"])
    lookup = np.array([parts.index(str(n)) if str(n) in parts else -1 for n in names] + [-1])
    part_code = lookup[codes]  # (factorize marks missing names -1: the lookup's last entry)
    n = int(frames.max()) + 1 if n_frames is None else int(n_frames)
    keep = (part_code >= 0) & (mice >= 0) & (mice < MAX_MICE) & (frames >= 0) & (frames < n)
    out = np.full((n, MAX_MICE, len(parts), 2), np.nan, np.float32)
    xy = frame[["x", "y"]].to_numpy(np.float32)
    out[frames[keep], mice[keep], part_code[keep]] = xy[keep]
    return out


def fill_gaps(series: np.ndarray) -> np.ndarray:
    """Linear interpolation over NaN along axis 0 (ends held); all-NaN columns stay NaN."""
    flat = series.reshape(len(series), -1).copy()
    t = np.arange(len(flat))
    for k in range(flat.shape[1]):
        col = flat[:, k]
        ok = ~np.isnan(col)
        if ok.all() or not ok.any():
            continue
        flat[:, k] = np.interp(t, t[ok], col[ok])
    return flat.reshape(series.shape)


def resample(series: np.ndarray, fps_in: float, fps_out: float) -> np.ndarray:
    """Linear resampling along axis 0 from fps_in to fps_out (same start time)."""
    if abs(fps_in - fps_out) < 1e-6 or len(series) < 2:
        return series
    n_out = max(1, round(len(series) * fps_out / fps_in))
    pos = np.arange(n_out) * (fps_in / fps_out)
    lo = np.clip(np.floor(pos).astype(np.int64), 0, len(series) - 1)
    hi = np.clip(lo + 1, 0, len(series) - 1)
    w = (pos - lo).astype(np.float32).reshape((-1,) + (1,) * (series.ndim - 1))
    return series[lo] * (1 - w) + series[hi] * w


def _nanmean(stack: np.ndarray, axis: int) -> np.ndarray:
    """np.nanmean without the all-NaN warning."""
    count = (~np.isnan(stack)).sum(axis=axis)
    total = np.nansum(stack, axis=axis)
    return np.where(count > 0, total / np.maximum(count, 1), np.nan).astype(np.float32)


def common_skeleton(pose: np.ndarray, parts: list[str], warn: Warn, where: str) -> np.ndarray:
    """(F, 4, 5, 2) nose, ears, body centre, tail base from whatever the lab tracked."""
    index = {p: i for i, p in enumerate(parts)}
    out = np.full((*pose.shape[:2], len(SKELETON), 2), np.nan, np.float32)
    present_mice = ~np.isnan(pose).all(axis=(0, 2, 3))
    for j, name in enumerate(SKELETON):
        for option in FALLBACKS[name]:
            if all(p in index for p in option):
                value = _nanmean(np.stack([pose[:, :, index[p]] for p in option]), axis=0)
                dead = np.isnan(value).all(axis=(0, 2)) & present_mice
                if dead.any() and option == FALLBACKS[name][0]:
                    mice = ", ".join(f"mouse{m + 1}" for m in np.flatnonzero(dead))
                    warn(f"{where}: body part {name} is NaN in every frame for {mice}; "
                         "using a fallback")  # fmt: skip
                filled = np.where(np.isnan(out[:, :, j]), value, out[:, :, j])
                out[:, :, j] = filled
            if not np.isnan(out[:, present_mice, j]).all(axis=(0, 2)).any():
                break
    return out


# --------------------------------------------------------------------------- features


def _rotate(vec: np.ndarray, cos: np.ndarray, sin: np.ndarray) -> np.ndarray:
    """Rotate (..., 2) vectors by -angle (into a frame whose x axis has angle (cos, sin))."""
    x, y = vec[..., 0], vec[..., 1]
    return np.stack([x * cos + y * sin, -x * sin + y * cos], axis=-1)


def _speed(points: np.ndarray, fps: float) -> np.ndarray:
    """|d/dt| of (F, ..., 2) positions in units per second."""
    if len(points) < 2:
        return np.zeros(points.shape[:-1], np.float32)
    return np.linalg.norm(np.gradient(points, axis=0), axis=-1) * fps


def _deriv(values: np.ndarray, fps: float) -> np.ndarray:
    return np.gradient(values, axis=0) * fps if len(values) > 1 else np.zeros_like(values)


def pair_features(skel: np.ndarray, streams: list[tuple[int, int]], ppc: float, fps: float):
    """(S, F, 45) float32 agent-centric features in cm and cm/s per (agent, target) stream
    (target == agent: a self stream, target features zero). NaN-free."""
    missing = np.isnan(skel).any(axis=-1).mean(axis=-1).astype(np.float32)  # (F, 4)
    pts = np.nan_to_num(fill_gaps(skel) / max(ppc, 1e-6))  # (F, 4, 5, 2) cm
    nose, ear_l, ear_r, center, tail = (pts[:, :, i] for i in range(5))
    origin = (ear_l + ear_r) / 2
    axis = origin - tail
    norm = np.linalg.norm(axis, axis=-1)
    cos = np.where(norm > 1e-6, axis[..., 0] / np.maximum(norm, 1e-6), 1.0)
    sin = np.where(norm > 1e-6, axis[..., 1] / np.maximum(norm, 1e-6), 0.0)
    length = np.linalg.norm(nose - tail, axis=-1)  # (F, 4)
    speed_c, speed_n = _speed(center, fps), _speed(nose, fps)
    accel_c = _deriv(speed_c, fps)
    out = np.zeros((len(streams), len(pts), PAIR_FEATURES), np.float32)
    for s, (a, b) in enumerate(streams):
        own = _rotate(pts[:, a] - origin[:, a, None], cos[:, a, None], sin[:, a, None])
        f = [own.reshape(len(pts), -1) / 10]
        f.append(np.full((len(pts), 1), float(a == b), np.float32))
        f.append(length[:, a, None] / 10)
        f.append(speed_c[:, a, None] / 10)
        f.append(speed_n[:, a, None] / 10)
        f.append(accel_c[:, a, None] / 100)
        f.append(missing[:, a, None])
        if a == b:
            out[s, :, :16] = np.concatenate(f, axis=1)
            out[s, :, 44] = 1.0  # target missing: there is no target
            continue
        other = _rotate(pts[:, b] - origin[:, a, None], cos[:, a, None], sin[:, a, None])
        f.append(other.reshape(len(pts), -1) / 10)
        pairs = [(nose, nose), (nose, center), (nose, tail), (center, center), (tail, nose)]
        dist = np.stack([np.linalg.norm(p[:, a] - q[:, b], axis=-1) for p, q in pairs], axis=1)
        f.append(dist / 10)
        f.append(np.exp(-dist / 3))
        f.append(length[:, b, None] / 10)
        f.append(speed_c[:, b, None] / 10)
        f.append(accel_c[:, b, None] / 100)
        f.append(-_deriv(dist[:, 3:4], fps) / 10)  # approach speed of the centres
        rel_cos = cos[:, b] * cos[:, a] + sin[:, b] * sin[:, a]
        rel_sin = sin[:, b] * cos[:, a] - cos[:, b] * sin[:, a]
        to_target = _rotate(center[:, b] - origin[:, a], cos[:, a], sin[:, a])
        bearing = to_target / np.maximum(np.linalg.norm(to_target, axis=-1, keepdims=True), 1e-6)
        f.append(np.stack([rel_cos, rel_sin], axis=1))
        f.append(bearing)
        f.append(missing[:, b, None])
        out[s] = np.concatenate(f, axis=1)
    return np.clip(np.nan_to_num(out), -50, 50)


def motion_features(pose18: np.ndarray, streams: list[tuple[int, int]], ppc: float, fps: float):
    """(S, F, 288): the users' plan. 4 mice (agent first, then target, then the others) x 18
    keypoints: x, y (cm / 10), speed (cm/s / 10) and acceleration (cm/s^2 / 100)."""
    pts = fill_gaps(pose18) / max(ppc, 1e-6)  # (F, 4, 18, 2)
    speed = _speed(np.nan_to_num(pts), fps)
    accel = _deriv(speed, fps)
    dead = np.isnan(pts).any(axis=-1)
    speed[dead] = 0.0
    accel[dead] = 0.0
    per_mouse = np.concatenate(
        [np.nan_to_num(pts) / 10, speed[..., None] / 10, accel[..., None] / 100], axis=-1
    )  # (F, 4, 18, 4)
    out = np.zeros((len(streams), len(pts), MOTION_FEATURES), np.float32)
    for s, (a, b) in enumerate(streams):
        order = [a] + ([b] if b != a else []) + [m for m in range(MAX_MICE) if m not in (a, b)]
        out[s] = per_mouse[:, order].transpose(0, 1, 3, 2).reshape(len(pts), -1)
    return np.clip(np.nan_to_num(out), -50, 50)


def all_streams(n_mice: int = MAX_MICE) -> list[tuple[int, int]]:
    """Every self stream and every ordered pair of `n_mice` mice (0-based indices)."""
    return [(a, b) for a in range(n_mice) for b in range(n_mice)]


def video_features(
    tracking: pd.DataFrame,
    *,
    kind: str,
    fps_in: float,
    fps: float,
    ppc: float,
    streams: list[tuple[int, int]],
    warn: Warn,
    where: str,
) -> np.ndarray:
    """(S, F_model, D) features of one video at the model's frame rate `fps`."""
    present = sorted(str(p) for p in tracking["bodypart"].dropna().unique())
    if kind == "motion":
        pose = pose_array(tracking, MOTION_PARTS)
        if not any(p in MOTION_PARTS for p in present):
            raise InputError(f"{where}: none of the tracked body parts is a known keypoint")
        pose = resample(fill_gaps(pose), fps_in, fps)
        return motion_features(pose, streams, ppc, fps)
    pose = pose_array(tracking, present)
    skel = common_skeleton(pose, present, warn, where)
    skel = resample(skel, fps_in, fps)  # (NaN propagates; gaps are filled in the features)
    return pair_features(skel, streams, ppc, fps)


# --------------------------------------------------------------------------- model windows


def window_starts(n_frames: int, window: int, stride: int) -> list[int]:
    """Window starts covering [0, n_frames), the last one ending at the end."""
    if n_frames <= window:
        return [0]
    starts = list(range(0, n_frames - window + 1, stride))
    if starts[-1] + window < n_frames:
        starts.append(n_frames - window)
    return starts


def predict_probs(
    forward: Forward, feats: np.ndarray, window: int, stride: int, batch: int = 64
) -> np.ndarray:
    """(S, F, D) features -> (S, F, C) probabilities, overlapping windows averaged with
    triangular weights (window centres count most)."""
    n_streams, n_frames, _ = feats.shape
    starts = window_starts(n_frames, window, stride)
    weight = np.minimum(np.arange(window) + 1, window - np.arange(window)).astype(np.float32)
    items = [(s, t) for s in range(n_streams) for t in starts]
    total: np.ndarray | None = None
    norm = np.zeros((n_streams, n_frames, 1), np.float32)
    for i in range(0, len(items), batch):
        chunk = items[i : i + batch]
        x = np.zeros((len(chunk), feats.shape[2], window), np.float32)
        for k, (s, t) in enumerate(chunk):
            part = feats[s, t : t + window]
            x[k, :, : len(part)] = part.T
        logits = forward(x)
        if total is None:
            total = np.zeros((n_streams, n_frames, logits.shape[-1]), np.float32)
        for k, (s, t) in enumerate(chunk):
            n = min(window, n_frames - t)
            total[s, t : t + n] += logits[k, :n] * weight[:n, None]
            norm[s, t : t + n] += weight[:n, None]
    assert total is not None
    logits = np.clip(total / np.maximum(norm, 1e-6), -30.0, 30.0)
    return 1.0 / (1.0 + np.exp(-logits))


# --------------------------------------------------------------------------- post-processing


def smooth(probs: np.ndarray, size: int) -> np.ndarray:
    """Centred moving average over axis 0 (size 1: unchanged)."""
    if size <= 1 or len(probs) < 2:
        return probs
    pad = size // 2
    padded = np.pad(probs, [(pad, size - 1 - pad)] + [(0, 0)] * (probs.ndim - 1), mode="edge")
    csum = np.cumsum(padded, axis=0, dtype=np.float64)
    csum = np.concatenate([np.zeros((1, *probs.shape[1:])), csum])
    return ((csum[size:] - csum[:-size]) / size).astype(np.float32)


def runs_of(labels: np.ndarray) -> list[tuple[int, int, int]]:
    """(label, start, stop) runs of a 1-D int array, stop exclusive."""
    if len(labels) == 0:
        return []
    change = np.flatnonzero(np.diff(labels)) + 1
    starts = np.concatenate([[0], change])
    stops = np.concatenate([change, [len(labels)]])
    return [(int(labels[a]), int(a), int(b)) for a, b in zip(starts, stops, strict=True)]


def clean_labels(labels: np.ndarray, max_gap: int, min_duration: int) -> np.ndarray:
    """Fill gaps of 'none' (-1) up to `max_gap` frames between two runs of the same action,
    then drop runs shorter than `min_duration`. One label per frame stays one label per frame."""
    labels = labels.copy()
    runs = runs_of(labels)
    for i in range(1, len(runs) - 1):
        label, a, b = runs[i]
        if label == -1 and b - a <= max_gap and runs[i - 1][0] == runs[i + 1][0] != -1:
            labels[a:b] = runs[i - 1][0]
    for label, a, b in runs_of(labels):
        if label != -1 and b - a < min_duration:
            labels[a:b] = -1
    return labels


def decode_stream(
    probs: np.ndarray, allowed: np.ndarray, thresholds: np.ndarray, post: dict[str, Any]
) -> np.ndarray:
    """(F, C) probabilities -> (F,) output index or -1: the allowed output with the largest
    probability minus its threshold, if above it."""
    p = smooth(probs, int(post.get("smooth", 1)))
    margin = np.where(allowed[None, :], p - thresholds[None, :], -np.inf)
    best = margin.argmax(axis=1)
    labels = np.where(margin[np.arange(len(p)), best] > 0, best, -1)
    return clean_labels(labels, int(post.get("max_gap", 0)), int(post.get("min_duration", 1)))


def to_label_frames(start: int, stop: int, ratio: float) -> tuple[int, int]:
    """Model-grid interval -> label-grid interval (monotone: disjoint stays disjoint)."""
    return round(start * ratio), round(stop * ratio)


def video_rows(
    video_id: int,
    lab: str,
    probs: np.ndarray,
    streams: list[tuple[str, str]],
    behaviors: list[str],
    spec: dict[str, Any],
    post: dict[str, Any],
    ratio: float,
) -> list[tuple]:
    """Submission rows (video, agent, target, action, start, stop) of one video.

    `probs` (S, F, C) belongs to `streams` ((agent, target) names); outputs are actions, or
    coarse groups mapped to the stream's most frequent whitelisted action of that group."""
    outputs: list[str] = spec["outputs"]
    groups: dict[str, list[str]] | None = spec.get("groups")
    thresholds = np.array(
        [post.get("thresholds", {}).get(lab, {}).get(o, post.get("threshold", 0.5))
         for o in outputs], np.float32,
    )  # fmt: skip
    allowed_by_stream = whitelist_streams(behaviors)
    rows: list[tuple] = []
    for s, (agent, target) in enumerate(streams):
        allowed_actions = allowed_by_stream.get((agent, target), [])
        if not allowed_actions:
            continue
        if groups is None:
            names = [o if o in allowed_actions else None for o in outputs]
        else:
            priority = spec.get("action_priority", [])
            names = []
            for o in outputs:
                members = [a for a in priority if a in groups.get(o, []) and a in allowed_actions]
                members += [a for a in allowed_actions if a in groups.get(o, [])
                            and a not in members]  # fmt: skip
                names.append(members[0] if members else None)
        allowed = np.array([n is not None for n in names])
        if not allowed.any():
            continue
        labels = decode_stream(probs[s], allowed, thresholds, post)
        for label, a, b in runs_of(labels):
            if label < 0:
                continue
            start, stop = to_label_frames(a, b, ratio)
            if stop > start:
                rows.append((video_id, agent, target, names[label], start, stop))
    return rows


def _frames_ok(rows: list[tuple]) -> bool:
    """True if no two rows of one (video, agent, target) with different actions overlap."""
    by_pair: dict[tuple, list[tuple[int, int, str]]] = {}
    for video, agent, target, action, start, stop in rows:
        by_pair.setdefault((video, agent, target), []).append((start, stop, action))
    for spans in by_pair.values():
        spans.sort()
        end, action = -1, None
        for start, stop, act in spans:
            if start < end and act != action:
                return False
            if stop > end:
                end, action = stop, act
    return True


# --------------------------------------------------------------------------- the whole test set


def label_fps(lab: str, tracking_fps: float, spec: dict[str, Any]) -> float:
    """The frame rate of the lab's label grid (its tracking's unless the spec overrides it)."""
    return float(spec.get("label_fps", {}).get(lab, tracking_fps))


def predict_video(
    row: dict[str, Any], tracking: pd.DataFrame, forward: Forward, spec: dict[str, Any],
    post: dict[str, Any], warn: Warn,
) -> list[tuple]:  # fmt: skip
    """Submission rows for one test.csv row and its tracking frame."""
    video_id, lab = int(row["video_id"]), str(row["lab_id"])
    where = f"video {video_id} (lab {lab})"
    behaviors = parse_behaviors(row.get("behaviors_labeled"), where)
    if not behaviors:
        warn(f"{where}: behaviors_labeled is empty: nothing to predict")
        return []
    tracked = {int(m) for m in tracking["mouse_id"].dropna().unique()}
    names = list(whitelist_streams(behaviors))
    streams, kept = [], []
    for agent, target in names:
        a = mouse_index(agent)
        b = a if target == "self" else mouse_index(target)
        absent = [name for name, m in ((agent, a), (target, b)) if m + 1 not in tracked]
        if absent:  # (tracking only holds mice 1-4: pose_array drops the others)
            warn(f"{where}: {absent[0]} has no tracking; no predictions for {agent},{target}")
            continue
        streams.append((a, b))
        kept.append((agent, target))
    if not streams:
        return []
    fps_in = float(row.get("frames_per_second") or spec["fps"])
    ppc = float(row.get("pix_per_cm_approx") or 1.0)
    feats = video_features(tracking, kind=spec["features"], fps_in=fps_in, fps=spec["fps"],
                           ppc=ppc, streams=streams, warn=warn, where=where)  # fmt: skip
    probs = predict_probs(forward, feats, spec["window"], spec["stride"])
    ratio = label_fps(lab, fps_in, spec) / spec["fps"]
    rows = video_rows(video_id, lab, probs, kept, behaviors, spec, post, ratio)
    if not _frames_ok(rows):  # cannot happen by construction; never hand the metric a failure
        raise InputError(f"{where}: internal error: overlapping actions; dropped")
    return rows


def read_test_csv(path: Path) -> pd.DataFrame:
    """test.csv with lab_id and video_id checked; InputError if missing or empty."""
    if not Path(path).is_file():
        raise InputError(f"{path}: not found")
    try:
        table = pd.read_csv(path)
    except pd.errors.EmptyDataError:
        raise InputError(f"{path}: empty file (no header, no videos)") from None
    missing = [c for c in ("lab_id", "video_id") if c not in table.columns]
    if missing:
        raise InputError(f"{path}: missing column(s) {', '.join(missing)}")
    if table.empty:
        raise InputError(f"{path}: no videos (the file has a header only)")
    return table


def predict_all(
    data_root: Path, forwards: dict[str, Forward], spec: dict[str, Any], post: dict[str, Any],
    warn: Warn, split: str = "test",
) -> tuple[pd.DataFrame, list[int]]:  # fmt: skip
    """The submission for every video of `<split>.csv`, and the ids of the videos that failed."""
    table = read_test_csv(Path(data_root) / f"{split}.csv")
    rows: list[tuple] = []
    failed: list[int] = []
    placeholder: tuple | None = None
    for record in table.to_dict("records"):
        video_id, lab = record["video_id"], str(record["lab_id"])
        path = Path(data_root) / f"{split}_tracking" / lab / f"{video_id}.parquet"
        try:
            forward = forwards.get(lab) or forwards.get("*")
            if forward is None:
                raise InputError(f"no model for lab {lab}")
            rows += predict_video(record, read_tracking(path), forward, spec, post, warn)
            behaviors = parse_behaviors(record.get("behaviors_labeled"), "")
            if placeholder is None and behaviors:
                placeholder = (int(video_id), *behaviors[0].split(","), 0, 1)
        except Exception as exc:
            failed.append(int(video_id))
            warn(f"video {video_id} (lab {lab}): {type(exc).__name__}: {exc}; no rows for it")
    if not rows and placeholder is not None:
        # The metric fails an empty submission outright; one frame of one whitelisted
        # action costs almost nothing.
        warn("no action predicted anywhere; writing one 1-frame row (the metric refuses an "
             "empty submission)")  # fmt: skip
        rows.append(placeholder)
    return submission_frame(rows), failed


def submission_frame(rows: list[tuple]) -> pd.DataFrame:
    """Rows -> the submission table (row_id 0..n-1)."""
    frame = pd.DataFrame(rows, columns=list(SUBMISSION_COLUMNS[1:]))
    frame.insert(0, "row_id", np.arange(len(frame)))
    return frame.astype({"video_id": np.int64, "start_frame": np.int64, "stop_frame": np.int64})


def write_csv_atomic(path: Path, frame: pd.DataFrame) -> None:
    """Write a CSV beside its target, then rename over it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w", newline="") as fh:
            frame.to_csv(fh, index=False)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def onnx_forward(path: Path, device: str = "auto") -> Forward:
    """An onnxruntime session as a Forward."""
    import onnxruntime as ort

    available = ort.get_available_providers()
    providers = ["CPUExecutionProvider"]
    if device in ("auto", "cuda") and "CUDAExecutionProvider" in available:
        providers.insert(0, "CUDAExecutionProvider")
    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(str(path), options, providers=providers)
    name = session.get_inputs()[0].name

    def forward(x: np.ndarray) -> np.ndarray:
        return session.run(None, {name: x.astype(np.float32)})[0]

    return forward


def main(argv: list[str] | None = None) -> int:
    here = Path(__file__).resolve().parent
    parser = argparse.ArgumentParser(description="MABe predictor: DATA_ROOT -> submission.csv")
    parser.add_argument("data_root", type=Path, help="folder with test.csv and test_tracking/")
    parser.add_argument("out", type=Path)
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    parser.add_argument("--split", default="test", help="csv/tracking prefix (test or train)")
    args = parser.parse_args(argv)

    def warn(message: str) -> None:
        print(f"warning: {message}", file=sys.stderr)

    try:
        spec = json.loads((here / "model.json").read_text())
        post_file = here / "postprocess.json"
        post = json.loads(post_file.read_text()) if post_file.is_file() else {}
        forwards = {lab: onnx_forward(here / name, args.device)
                    for lab, name in spec["models"].items()}  # fmt: skip
    except Exception as exc:
        print(f"error: cannot load the bundle in {here}: {type(exc).__name__}: {exc}",
              file=sys.stderr)  # fmt: skip
        return 2
    try:
        submission, failed = predict_all(args.data_root, forwards, spec, post, warn, args.split)
    except InputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    if submission.empty:
        print(f"error: every video of {args.data_root / (args.split + '.csv')} failed "
              f"({len(failed)}; see the warnings above); nothing written", file=sys.stderr)
        return 2
    write_csv_atomic(args.out, submission)
    videos = submission["video_id"].nunique()
    print(f"wrote {args.out}: {len(submission)} rows for {videos} video(s); "
          f"{len(failed)} video(s) failed")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
