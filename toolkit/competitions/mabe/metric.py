"""The official MABe F-beta (COMPETITIONS.md, section 3), on frame intervals, vectorised.

Frame sets are never materialised: per key (video, agent, target, action) the predicted and
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


def _sorted_runs(frame: pd.DataFrame, group: list[str]) -> pd.DataFrame:
    """Non-empty intervals sorted by group then start, with `prev` = the largest stop of the
    earlier intervals of the same group (-1 for the first)."""
    frame = frame[frame["stop_frame"] > frame["start_frame"]]
    frame = frame.sort_values([*group, "start_frame", "stop_frame"], kind="stable")
    prev = frame.groupby(group, sort=False)["stop_frame"].cummax()
    prev = prev.groupby([frame[g] for g in group], sort=False).shift(1)
    return frame.assign(prev=prev.fillna(-1).astype(np.int64))


def union_lengths(frame: pd.DataFrame, group: list[str]) -> pd.Series:
    """Number of frames covered by the union of each group's intervals."""
    runs = _sorted_runs(frame, group)
    new = (runs["stop_frame"] - np.maximum(runs["start_frame"], runs["prev"])).clip(lower=0)
    return new.groupby([runs[g] for g in group]).sum()


def merged_intervals(frame: pd.DataFrame, group: list[str]) -> pd.DataFrame:
    """Each group's intervals merged into disjoint, non-touching blocks."""
    runs = _sorted_runs(frame, group)
    first = (runs.groupby(group, sort=False).cumcount() == 0).to_numpy()
    block = np.cumsum(first | (runs["start_frame"].to_numpy() > runs["prev"].to_numpy()))
    return (
        runs.assign(block=block)
        .groupby([*group, "block"], sort=False)
        .agg(start_frame=("start_frame", "min"), stop_frame=("stop_frame", "max"))
        .reset_index()
        .drop(columns="block")
    )


def overlapping_pair(counted: pd.DataFrame) -> pd.Series | None:
    """The first frame interval where one (video, agent, target) has two different actions."""
    merged = merged_intervals(counted, KEY)
    pairs = _sorted_runs(merged, KEY[:3])
    clash = pairs["start_frame"] < pairs["prev"]
    return pairs[clash].iloc[0] if clash.any() else None


def whitelists(solution: pd.DataFrame) -> pd.DataFrame:
    """(video_id, agent_id, target_id, action) allowed per video (from behaviors_labeled)."""
    rows = []
    for video, value in solution.groupby("video_id", sort=False)["behaviors_labeled"].first().items():
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
    labels = solution[[*KEY, "start_frame", "stop_frame"]]
    label_len = union_lengths(labels, KEY).rename("label")
    pred_len = union_lengths(counted, KEY).rename("pred")
    both_len = union_lengths(pd.concat([labels, counted[labels.columns]]), KEY).rename("both")
    keys = pd.concat([label_len, pred_len, both_len], axis=1).fillna(0).astype(np.int64)
    keys["tp"] = keys["pred"] + keys["label"] - keys["both"]
    keys["fp"] = keys["pred"] - keys["tp"]
    keys["fn"] = keys["label"] - keys["tp"]
    keys = keys.reset_index()
    keys["lab_id"] = keys["video_id"].map(lab_of)
    per_action = keys.groupby(["lab_id", "action"])[["tp", "fp", "fn"]].sum()
    b2 = beta**2
    denom = (1 + b2) * per_action["tp"] + b2 * per_action["fn"] + per_action["fp"]
    per_action["f"] = np.where(denom > 0, (1 + b2) * per_action["tp"] / denom.clip(lower=1), 0.0)
    labelled = solution[["lab_id", "action"]].drop_duplicates()
    per_action = per_action.reset_index().merge(labelled, on=["lab_id", "action"], how="right")
    per_action = per_action.fillna({"tp": 0, "fp": 0, "fn": 0, "f": 0.0})
    per_lab = per_action.groupby("lab_id")["f"].mean()
    labs = list(dict.fromkeys(solution["lab_id"]))
    per_lab = per_lab.reindex(labs).fillna(0.0)
    return {
        "score": float(per_lab.mean()),
        "per_lab": {str(k): float(v) for k, v in per_lab.items()},
        "per_action": {
            f"{r.lab_id}/{r.action}": float(r.f) for r in per_action.itertuples(index=False)
        },
        "counted_rows": int(len(counted)),
        "ignored_rows": int(len(submission) - len(counted)),
    }


def score(solution: pd.DataFrame, submission: pd.DataFrame, beta: float = 1.0) -> float:
    """The headline score alone."""
    return mouse_fbeta(solution, submission, beta)["score"]
