"""Scoring with the official metric during and after training: whole validation videos go
through the bundle's own inference and post-processing (standalone.py); after training the
post-processing is tuned on them and saved as the run's postprocess.json."""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from torch import nn

from toolkit.competitions.mabe.config import MABeData
from toolkit.competitions.mabe.dataset import Video
from toolkit.competitions.mabe.metric import mouse_fbeta
from toolkit.competitions.mabe.standalone import (
    Forward,
    predict_probs,
    submission_frame,
    video_rows,
    whitelist_streams,
)
from toolkit.competitions.protocol import EvalResult
from toolkit.export.models import numpy_forward
from toolkit.fileio import read_json, write_json

POSTPROCESS = "postprocess.json"
GRID = {"smooth": (1, 5, 11), "max_gap": (0, 6), "min_duration": (1, 5, 10)}


def model_spec(stats: dict[str, Any]) -> dict[str, Any]:
    """What predict.py needs to know about the model (written as model.json)."""
    return {
        "features": stats["features"],
        "fps": stats["fps"],
        "label_fps": stats["label_fps"],
        "window": stats["window"],
        "stride": stats["predict_stride"],
        "outputs": stats["outputs"],
        "groups": stats["groups"],
        "action_priority": stats["action_priority"],
    }


def default_post(cfg: MABeData) -> dict[str, Any]:
    p = cfg.postprocess
    return {"threshold": p.threshold, "smooth": p.smooth, "max_gap": p.max_gap,
            "min_duration": p.min_duration, "thresholds": {}}  # fmt: skip


def video_probabilities(forward: Forward, videos: list[Video], spec: dict) -> list[np.ndarray]:
    """(S, F, C) probabilities of every video."""
    return [predict_probs(forward, np.asarray(v.features), spec["window"], spec["stride"])
            for v in videos]  # fmt: skip


def submission(videos: list[Video], probs: list[np.ndarray], spec: dict, post: dict):
    rows: list[tuple] = []
    for v, p in zip(videos, probs, strict=True):
        rows += video_rows(v.video_id, v.lab, p, v.streams, v.behaviors, spec, post,
                           v.label_ratio)  # fmt: skip
    return submission_frame(rows)


def safe_score(solution: pd.DataFrame, sub: pd.DataFrame) -> dict[str, Any]:
    """The metric, with an empty submission scoring 0 (the metric refuses empty files;
    predicting nothing leaves every label a false negative)."""
    if len(sub) == 0:
        labs = list(dict.fromkeys(solution["lab_id"]))
        return {"score": 0.0, "per_lab": dict.fromkeys(labs, 0.0), "per_action": {}}
    return mouse_fbeta(solution, sub)


def most_frequent_baseline(
    videos: list[tuple[int, list[str], int]], priority: list[str]
) -> pd.DataFrame:
    """For (video_id, whitelist, label frames) of each video: every whitelisted (agent,
    target) predicts, over the whole video, the video's whitelisted action most frequent in
    training (one action per pair: the overlap rule holds)."""
    rows = []
    for video_id, behaviors, stop in videos:
        allowed = whitelist_streams(behaviors)
        actions = {a for acts in allowed.values() for a in acts}
        best = next((a for a in priority if a in actions), None)
        for (agent, target), acts in allowed.items():
            if best in acts:
                rows.append((video_id, agent, target, best, 0, stop))
    return submission_frame(rows)


def baselines(videos: list[Video], solution: pd.DataFrame, spec: dict) -> dict[str, float]:
    """The official score of the two baselines on these videos."""
    items = [(v.video_id, v.behaviors, round(v.features.shape[1] * v.label_ratio))
             for v in videos]  # fmt: skip
    frequent = most_frequent_baseline(items, spec["action_priority"])
    return {"nothing": 0.0, "most_frequent": safe_score(solution, frequent)["score"]}


def evaluate_model(model: nn.Module, datamodule, recipe) -> EvalResult:
    """The official score of the validation videos with the recipe's default post-processing."""
    was_training = model.training
    model.eval()
    spec = model_spec(datamodule.stats)
    probs = video_probabilities(numpy_forward(model), datamodule.val_videos, spec)
    model.train(was_training)
    sub = submission(datamodule.val_videos, probs, spec, default_post(recipe.data))
    result = safe_score(datamodule.solution, sub)
    counts = sub.groupby("video_id").size()
    predictions = {str(v.video_id): int(counts.get(v.video_id, 0)) for v in datamodule.val_videos}
    details = {
        "per_lab": result["per_lab"],
        "rows": len(sub),
        "baselines": baselines(datamodule.val_videos, datamodule.solution, spec),
    }
    return EvalResult(result["score"], predictions, details)


THRESHOLDS = np.linspace(0.05, 0.95, 19)


def best_thresholds(probs: np.ndarray, targets: np.ndarray, grid: np.ndarray = THRESHOLDS) -> float:
    """The threshold with the best frame-level F1 (valid frames only; 0.5 with no positives)."""
    valid = targets >= 0
    p, y = probs[valid], targets[valid] > 0
    if not y.any():
        return 0.5
    pred = p[:, None] > grid[None, :]
    tp = (pred & y[:, None]).sum(0)
    fp = (pred & ~y[:, None]).sum(0)
    fn = y.sum() - tp
    f1 = 2 * tp / np.maximum(2 * tp + fp + fn, 1)
    return float(grid[int(np.argmax(f1))])


def tune(
    videos: list[Video], probs: list[np.ndarray], targets: list[np.ndarray], spec: dict,
    solution: pd.DataFrame, start: dict[str, Any],
) -> tuple[dict[str, Any], dict[str, Any]]:  # fmt: skip
    """Per (lab, output) thresholds (frame F1), then smoothing / gap / duration on the
    official metric; kept only where they beat `start`."""
    thresholds: dict[str, dict[str, float]] = {}
    for lab in sorted({v.lab for v in videos}):
        idx = [i for i, v in enumerate(videos) if v.lab == lab]
        for c, output in enumerate(spec["outputs"]):
            p = np.concatenate([probs[i][..., c].ravel() for i in idx])
            t = np.concatenate([np.asarray(targets[i])[..., c].ravel() for i in idx])
            if (t >= 0).any():
                thresholds.setdefault(lab, {})[output] = best_thresholds(p, t)
    best_post = dict(start)
    best = safe_score(solution, submission(videos, probs, spec, best_post))["score"]
    tried = {"default": best}
    for smooth, gap, duration in itertools.product(*GRID.values()):
        post = {**start, "thresholds": thresholds, "smooth": smooth, "max_gap": gap,
                "min_duration": duration}  # fmt: skip
        value = safe_score(solution, submission(videos, probs, spec, post))["score"]
        tried[f"smooth={smooth},max_gap={gap},min_duration={duration}"] = value
        if value > best + 1e-12:
            best, best_post = value, post
    return best_post, {"score": best, "tried": len(tried), "default": tried["default"]}


def after_training(model: nn.Module, datamodule, recipe, run) -> dict[str, Any]:
    """Tune the post-processing on the validation videos (best weights), save it beside the
    run, and report the official validation score, per lab and action, and the baselines."""
    model.eval()
    spec = model_spec(datamodule.stats)
    videos = datamodule.val_videos
    probs = video_probabilities(numpy_forward(model), videos, spec)
    start = default_post(recipe.data)
    if recipe.data.postprocess.tune:
        post, report = tune(videos, probs, datamodule.val_set.targets, spec,
                            datamodule.solution, start)  # fmt: skip
    else:
        post, report = start, {}
    write_json(run.path / POSTPROCESS, post)
    result = safe_score(datamodule.solution, submission(videos, probs, spec, post))
    return {
        "val_mabe_fbeta": result["score"],
        "val_mabe_fbeta_default_postprocess": report.get("default", result["score"]),
        "val_per_lab": result["per_lab"],
        "val_per_action": result["per_action"],
        "val_baselines_mabe_fbeta": baselines(videos, datamodule.solution, spec),
        "postprocess": post,
    }


def report_figures(run, out: Path) -> list[tuple[str, Path]]:
    """A bar chart of the validation F1 per (lab, action)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metrics = read_json(run.metrics_file) if run.metrics_file.is_file() else {}
    per_action = metrics.get("val_per_action") or {}
    if not per_action:
        return []
    names = sorted(per_action)
    fig, ax = plt.subplots(figsize=(max(4, 0.5 * len(names) + 2), 3.5))
    ax.bar(range(len(names)), [per_action[n] for n in names], color="#4c72b0")
    ax.set_xticks(range(len(names)), names, rotation=60, ha="right", fontsize=8)
    ax.set_ylim(0, 1)
    ax.set_ylabel("F1 (validation)")
    ax.set_title(f"MABe F-beta {metrics.get('val_mabe_fbeta', float('nan')):.3f} per lab/action")
    fig.tight_layout()
    out.mkdir(parents=True, exist_ok=True)
    path = out / "per_action_f1.png"
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return [("validation F1 per lab and action", path)]
