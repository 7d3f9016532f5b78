"""Per-event metrics from P(tail): tail recall/precision/F1, macro F1, ROC AUC, positive-class
and top-label ECE (15 equal-width bins, binned here: torchmetrics' bug #3510 puts p = 1.0 in an
extra bin), constant-predictor baselines, and the confounding check (does P(tail) cluster by
video beside the label?)."""

from __future__ import annotations

from typing import Any

import numpy as np

BINS = 15


def tail_f1_from_logits(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """The engine's per-batch metric: tail F1 of argmax over (N, 2) logits."""
    return f1(np.asarray(y_true).astype(int), np.asarray(y_pred).argmax(-1))


def f1(y: np.ndarray, pred: np.ndarray, positive: int = 1) -> float:
    tp = int(np.sum((pred == positive) & (y == positive)))
    fp = int(np.sum((pred == positive) & (y != positive)))
    fn = int(np.sum((pred != positive) & (y == positive)))
    return 2 * tp / (2 * tp + fp + fn) if tp else 0.0


def expected_calibration_error(confidence: np.ndarray, hit: np.ndarray, bins: int = BINS) -> float:
    """Sum over equal-width bins of |mean confidence - mean hit| weighted by the bin's share
    (p = 1.0 falls in the last bin)."""
    confidence = np.clip(np.asarray(confidence, dtype=float), 0.0, 1.0)
    index = np.minimum((confidence * bins).astype(int), bins - 1)
    total = 0.0
    for b in range(bins):
        inside = index == b
        if inside.any():
            total += inside.mean() * abs(confidence[inside].mean() - hit[inside].mean())
    return float(total)


def binary_report(y: np.ndarray, p_tail: np.ndarray, threshold: float = 0.5) -> dict[str, Any]:
    """Every headline figure for one set of events (labels 0 ear / 1 tail)."""
    from sklearn.metrics import roc_auc_score

    y = np.asarray(y).astype(int)
    p = np.asarray(p_tail, dtype=float)
    pred = (p >= threshold).astype(int)
    tp = int(np.sum((pred == 1) & (y == 1)))
    prior = float(y.mean()) if len(y) else 0.0
    top_conf = np.where(pred == 1, p, 1 - p)
    return {
        "events": len(y),
        "tail_events": int(y.sum()),
        "tail_recall": tp / max(int(y.sum()), 1),
        "tail_precision": tp / max(int(pred.sum()), 1),
        "tail_f1": f1(y, pred),
        "macro_f1": (f1(y, pred, 1) + f1(y, pred, 0)) / 2,
        "accuracy": float(np.mean(pred == y)) if len(y) else 0.0,
        "roc_auc": float(roc_auc_score(y, p)) if len(set(y)) == 2 else None,
        "ece_positive_class_15": expected_calibration_error(p, y),
        "ece_top_label_15": expected_calibration_error(top_conf, (pred == y).astype(float)),
        "predicted_tail_fraction": float(pred.mean()) if len(y) else 0.0,
        "p_tail_std": float(p.std()) if len(p) else 0.0,
        "baselines": {  # tail F1 of constant predictors
            "all_tail": 2 * prior / (1 + prior) if prior else 0.0,
            "class_prior_random": prior,
        },
    }


def confounding(
    p_tail: np.ndarray, y: np.ndarray, videos: list[str], flag_at: float
) -> dict[str, Any]:
    """How much of P(tail)'s variance the video explains beside the label: a one-way ANOVA of
    the within-label residual (P(tail) minus its label's mean) on the video id. `video_share`
    is that ANOVA's eta squared; flagged when >= `flag_at` and p < 0.01."""
    from scipy.stats import f as f_dist

    p = np.asarray(p_tail, dtype=float)
    y = np.asarray(y).astype(int)
    videos_arr = np.asarray(videos)
    total = float(np.sum((p - p.mean()) ** 2))
    label_means = {c: p[y == c].mean() for c in set(y.tolist())}
    residual = p - np.array([label_means[c] for c in y])
    label_share = 1.0 - float(np.sum(residual**2)) / total if total > 0 else 0.0
    groups = sorted(set(videos_arr.tolist()))
    within_total = float(np.sum(residual**2))
    between = sum(
        (videos_arr == g).sum() * residual[videos_arr == g].mean() ** 2 for g in groups
    )  # the residual's overall mean is 0
    k, n = len(groups), len(p)
    video_share = float(between / within_total) if within_total > 0 else 0.0
    if k > 1 and n > k and within_total - between > 0:
        f_stat = (between / (k - 1)) / ((within_total - between) / (n - k))
        p_value = float(f_dist.sf(f_stat, k - 1, n - k))
    else:
        f_stat, p_value = 0.0, 1.0
    per_video = {
        g: {
            "events": int((videos_arr == g).sum()),
            "mean_p_tail": float(p[videos_arr == g].mean()),
            "tail_fraction": float(y[videos_arr == g].mean()),
        }
        for g in groups
    }
    flagged = bool(video_share >= flag_at and p_value < 0.01)
    return {
        "method": "one-way ANOVA of P(tail) minus its label's mean, on video id",
        "label_share": label_share,
        "video_share": video_share,
        "f_statistic": float(f_stat),
        "p_value": p_value,
        "videos": k,
        "flag_at": flag_at,
        "flagged": flagged,
        "verdict": (
            f"P(tail) clusters by video: the video explains {100 * video_share:.0f} % of its "
            "within-label variance (the model may have learnt lighting or camera)"
            if flagged
            else f"no clustering by video flagged ({100 * video_share:.0f} % within-label "
            f"variance explained by video, p = {p_value:.2g})"
        ),
        "per_video": per_video,
    }
