"""The official MABe F-beta (COMPETITIONS.md, section 3), on frame intervals, vectorised.

Where the official code and the prose differ, the code wins (see `mouse_fbeta`). Frame sets
are never materialised: per key (video, agent, target, action) the predicted and
labelled frames are unions of half-open intervals, and |P ∩ L| = |P| + |L| - |P ∪ L|."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from toolkit.competitions.mabe.standalone import mouse_name, parse_behaviors
from toolkit.errors import ToolkitError

REQUIRED = ("video_id", "agent_id", "target_id", "action", "start_frame", "stop_frame")
KEY = ["video_id", "agent_id", "target_id", "action"]


class MetricError(ToolkitError):
    """The metric refuses this solution or submission (the competition would fail it)."""


def _check(frame: pd.DataFrame, what: str, extra: tuple[str, ...] = ()) -> None:
    if len(frame) == 0:
        raise MetricError(f"the {what} is empty")
    missing = [c for c in (*REQUIRED, *extra) if c not in frame.columns]
    if missing:
        raise MetricError(f"the {what} is missing column(s) {', '.join(missing)}")
    bad = frame["start_frame"].to_numpy() > frame["stop_frame"].to_numpy()
    if bad.any():
        row = frame[bad].iloc[0]
        raise MetricError(
            f"the {what} has start_frame > stop_frame (video {row['video_id']}, "
            f"{row['agent_id']},{row['target_id']},{row['action']}: "
            f"{row['start_frame']} > {row['stop_frame']})"
        )


def normalise_ids(frame: pd.DataFrame) -> pd.DataFrame:
    """Solution ids as the submission writes them: `mouseN`, and `self` where target == agent
    (annotation parquets hold integers)."""
    frame = frame.copy()
    agent = frame["agent_id"].map(mouse_name)
    target = frame["target_id"].map(lambda v: "self" if str(v) == "self" else mouse_name(v))
    frame["agent_id"] = agent
    frame["target_id"] = target.where(target != agent, "self")
    return frame


def group_codes(frame: pd.DataFrame, cols: list[str]) -> np.ndarray:
    """One integer per distinct combination of `cols` (0..n-1)."""
    return frame.groupby(cols, sort=False).ngroup().to_numpy(np.int64)


def _sorted_runs(codes: np.ndarray, start: np.ndarray, stop: np.ndarray):
    """Non-empty intervals sorted by (code, start): (codes, starts, stops, prev, first) where
    `prev` is the largest stop of the earlier intervals of the same code and `first` marks
    each code's first interval."""
    keep = stop > start
    codes, start, stop = codes[keep], start[keep], stop[keep]
    order = np.lexsort((stop, start, codes))
    c, s, e = codes[order], start[order], stop[order]
    first = np.ones(len(c), bool)
    first[1:] = c[1:] != c[:-1]
    big = int(e.max()) + 2 if len(e) else 1  # offsets make one cumulative max per code
    running = np.maximum.accumulate(e + c * big) - c * big if len(e) else e
    prev = np.empty_like(e)
    prev[1:] = running[:-1]
    prev[first] = -1
    return c, s, e, prev, first


def union_lengths(codes: np.ndarray, start: np.ndarray, stop: np.ndarray, n: int) -> np.ndarray:
    """Frames covered by the union of each code's intervals (length n)."""
    c, s, e, prev, _ = _sorted_runs(codes, start, stop)
    new = np.clip(e - np.maximum(s, prev), 0, None)
    return np.bincount(c, weights=new, minlength=n).astype(np.int64)


def merged_intervals(codes: np.ndarray, start: np.ndarray, stop: np.ndarray):
    """Each code's intervals merged into disjoint, non-touching blocks: (codes, starts, stops)."""
    c, s, e, prev, first = _sorted_runs(codes, start, stop)
    if not len(c):
        return c, s, e
    heads = np.flatnonzero(first | (s > prev))
    return c[heads], s[heads], np.maximum.reduceat(e, heads)


def overlapping_pair(counted: pd.DataFrame) -> pd.Series | None:
    """A row where one (video, agent, target) has two different actions at once, or None."""
    if counted.empty:
        return None
    key = group_codes(counted, KEY)
    pair_of_key = np.zeros(key.max() + 1, np.int64)
    pair_of_key[key] = group_codes(counted, KEY[:3])
    row_of_key = np.zeros(key.max() + 1, np.int64)
    row_of_key[key] = np.arange(len(counted))
    start = counted["start_frame"].to_numpy(np.int64)
    stop = counted["stop_frame"].to_numpy(np.int64)
    k, s, e = merged_intervals(key, start, stop)
    c, s2, _, prev, first = _sorted_runs(pair_of_key[k], s, e)
    clash = ~first & (s2 < prev)
    if not clash.any():
        return None
    i = int(np.flatnonzero(clash)[0])
    pair_rows = np.flatnonzero(pair_of_key[key] == c[i])
    row = counted.iloc[int(pair_rows[0])].copy()
    row["start_frame"] = int(s2[i])
    return row


def whitelists(solution: pd.DataFrame) -> pd.DataFrame:
    """(video_id, agent_id, target_id, action) allowed per video (from behaviors_labeled)."""
    rows = []
    first = solution.groupby("video_id", sort=False)["behaviors_labeled"].first()
    for video, value in first.items():
        for entry in parse_behaviors(value, f"solution video {video}"):
            rows.append((video, *entry.split(",")))
    return pd.DataFrame(rows, columns=KEY).drop_duplicates()


def mouse_fbeta(
    solution: pd.DataFrame, submission: pd.DataFrame, beta: float = 1.0
) -> dict[str, Any]:
    """The official score plus per-lab and per-(lab, action) F and counts.

    `solution`: label intervals with lab_id and behaviors_labeled; `submission`: predicted
    intervals. Raises MetricError where the official metric raises."""
    _check(solution, "solution", ("lab_id", "behaviors_labeled"))
    _check(submission, "submission")
    solution = normalise_ids(solution)
    sub = submission[list(REQUIRED)].copy()
    sub["agent_id"] = sub["agent_id"].astype(str)
    sub["target_id"] = sub["target_id"].astype(str)
    sub["action"] = sub["action"].astype(str)
    sub = sub[sub["video_id"].isin(set(solution["video_id"]))]
    counted = sub.merge(whitelists(solution), on=KEY, how="inner")
    clash = overlapping_pair(counted) if len(counted) else None
    if clash is not None:
        raise MetricError(
            "multiple predictions for the same frame from one agent/target pair (video "
            f"{clash['video_id']}, {clash['agent_id']},{clash['target_id']}, around frame "
            f"{clash['start_frame']})"
        )
    lab_of = solution.groupby("video_id")["lab_id"].first()
    cols = [*KEY, "start_frame", "stop_frame"]
    both = pd.concat([solution[cols].assign(pred=False), counted[cols].assign(pred=True)],
                     ignore_index=True)  # fmt: skip
    code = group_codes(both, KEY)
    n = int(code.max()) + 1
    start = both["start_frame"].to_numpy(np.int64)
    stop = both["stop_frame"].to_numpy(np.int64)
    is_pred = both["pred"].to_numpy()
    label = union_lengths(code[~is_pred], start[~is_pred], stop[~is_pred], n)
    pred = union_lengths(code[is_pred], start[is_pred], stop[is_pred], n)
    tp = pred + label - union_lengths(code, start, stop, n)
    keys = both.groupby(code, sort=True)[["video_id", "action"]].first()
    keys = keys.assign(lab_id=keys["video_id"].map(lab_of), tp=tp, fp=pred - tp, fn=label - tp)
    per_action = keys.groupby(["lab_id", "action"])[["tp", "fp", "fn"]].sum()
    b2 = beta**2
    denom = (1 + b2) * per_action["tp"] + b2 * per_action["fn"] + per_action["fp"]
    per_action["f"] = np.where(denom > 0, (1 + b2) * per_action["tp"] / denom.clip(lower=1), 0.0)
    # The official code looks predicted keys up in a defaultdict of labels, which adds them:
    # so an action predicted (and whitelisted) in a lab without labels there joins the lab's
    # mean with F = 0, although COMPETITIONS.md says such false positives count for nothing.
    # (Every key of `keys` is labelled or counted, so every (lab, action) here is scored.)
    per_action = per_action.reset_index()
    per_lab = per_action.groupby("lab_id")["f"].mean()
    labs = list(dict.fromkeys(solution["lab_id"]))
    per_lab = per_lab.reindex(labs).fillna(0.0)
    return {
        "score": float(per_lab.mean()),
        "per_lab": {str(k): float(v) for k, v in per_lab.items()},
        "per_action": {
            f"{r.lab_id}/{r.action}": float(r.f) for r in per_action.itertuples(index=False)
        },
        "counted_rows": len(counted),
        "ignored_rows": int(len(submission) - len(counted)),
    }


def score(solution: pd.DataFrame, submission: pd.DataFrame, beta: float = 1.0) -> float:
    """The headline score alone."""
    return mouse_fbeta(solution, submission, beta)["score"]
