"""`toolkit score mabe SUBMISSION.csv SOLUTION`: strict validation, then the official metric.

SOLUTION is a solution CSV (label rows with lab_id and behaviors_labeled, as Kaggle's), or a
data root: test.csv + test_annotation/ when present, else train.csv + train_annotation/."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from toolkit.competitions.mabe.metric import REQUIRED, MetricError, mouse_fbeta
from toolkit.competitions.mabe.standalone import InputError, parse_behaviors
from toolkit.errors import DataError


def read_csv(path: Path, what: str) -> pd.DataFrame:
    """A CSV file, or DataError naming it."""
    if not Path(path).is_file():
        raise DataError(f"{path}: no such {what} file")
    try:
        return pd.read_csv(path)
    except pd.errors.EmptyDataError:
        raise DataError(f"{path}: the {what} file is empty") from None
    except Exception as exc:
        raise DataError(f"{path}: unreadable {what} CSV ({exc})") from None


def solution_from_root(root: Path) -> tuple[pd.DataFrame, set[int]]:
    """Label rows of a data root's annotated split, and every video id of its csv."""
    split = "test" if (root / "test_annotation").is_dir() else "train"
    table = read_csv(root / f"{split}.csv", "metadata")
    parts = []
    for row in table.to_dict("records"):
        path = root / f"{split}_annotation" / str(row["lab_id"]) / f"{row['video_id']}.parquet"
        if not path.is_file():
            continue
        try:
            where = f"{root / split}.csv video {row['video_id']}"
            whitelist = parse_behaviors(row.get("behaviors_labeled"), where)
        except InputError as exc:
            raise DataError(str(exc)) from None
        labels = pd.read_parquet(path)
        parts.append(labels.assign(video_id=row["video_id"], lab_id=row["lab_id"],
                                   behaviors_labeled=json.dumps(whitelist)))  # fmt: skip
    if not parts:
        raise DataError(f"{root}: no {split}_annotation/<lab>/<video>.parquet files")
    return pd.concat(parts, ignore_index=True), set(table["video_id"].astype(int))


def check_submission(sub: pd.DataFrame, videos: set[int], where: str) -> None:
    """Columns, integer frames, known video ids, `mouseN` / `self` ids (one line each)."""
    missing = [c for c in REQUIRED if c not in sub.columns]
    if missing:
        raise DataError(f"{where}: missing column(s) {', '.join(missing)}")
    if sub.empty:
        raise DataError(f"{where}: no rows (the metric refuses an empty submission)")
    for col in ("video_id", "start_frame", "stop_frame"):
        if not pd.api.types.is_integer_dtype(sub[col]):
            raise DataError(f"{where}: column {col} must hold integers")
    unknown = sorted(set(sub["video_id"].astype(int)) - videos)
    if unknown:
        raise DataError(f"{where}: {len(unknown)} unknown video id(s) (first: {unknown[0]})")
    agent_ok = sub["agent_id"].astype(str).str.fullmatch(r"mouse[1-9]")
    target_ok = sub["target_id"].astype(str).str.fullmatch(r"mouse[1-9]|self")
    bad = sub[~(agent_ok & target_ok)]
    if len(bad):
        row = bad.iloc[0]
        raise DataError(
            f"{where}: unknown agent/target id {row['agent_id']},{row['target_id']} "
            f"(video {row['video_id']}); expected mouseN and mouseM or self"
        )


def score_files(submission: Path, solution: Path) -> dict[str, Any]:
    """The headline score, per-lab and per-(lab, action) F1 of a submission CSV."""
    sub = read_csv(submission, "submission")
    if solution.is_dir():
        truth, videos = solution_from_root(solution)
    else:
        truth = read_csv(solution, "solution")
        if "video_id" not in truth.columns:
            raise DataError(f"{solution}: the solution has no video_id column")
        videos = set(truth["video_id"].astype(int))
    check_submission(sub, videos, str(submission))
    try:
        result = mouse_fbeta(truth, sub)
    except MetricError as exc:
        raise DataError(f"{submission}: {exc}") from None
    except InputError as exc:
        raise DataError(f"{solution}: {exc}") from None
    out: dict[str, Any] = {"score": result["score"]}
    out.update({f"lab {lab}": f for lab, f in result["per_lab"].items()})
    out.update({f"F1 {key}": f for key, f in sorted(result["per_action"].items())})
    out["counted rows"] = result["counted_rows"]
    out["ignored rows"] = result["ignored_rows"]
    return out
