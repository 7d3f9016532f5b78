"""`toolkit score crosssucking PREDICTIONS.csv MANIFEST.csv`: strict validation, then the same
figures as test_metrics.json (and the confounding report)."""

from __future__ import annotations

import csv
import math
from pathlib import Path
from typing import Any

import numpy as np

from toolkit.competitions.crosssucking.metrics import binary_report, confounding
from toolkit.competitions.crosssucking.standalone import ManifestError, read_manifest
from toolkit.errors import DataError

FLAG_AT = 0.3


def read_predictions(path: Path) -> dict[str, float]:
    """event_id -> p_tail; one DataError line for a malformed file (row named)."""
    if not path.is_file():
        raise DataError(f"{path}: predictions file not found")
    with path.open(newline="") as fh:
        reader = csv.DictReader(fh)
        missing = [c for c in ("event_id", "p_tail") if c not in (reader.fieldnames or [])]
        if missing:
            raise DataError(f"{path}: lacks column(s) {', '.join(missing)}")
        out: dict[str, float] = {}
        for row, values in enumerate(reader, start=1):
            try:
                p = float(values["p_tail"])
            except (TypeError, ValueError):
                p = math.nan
            if not 0.0 <= p <= 1.0:
                raise DataError(f"{path} row {row}: p_tail {values['p_tail']!r} is not in [0, 1]")
            if values["event_id"] in out:
                raise DataError(f"{path} row {row}: event_id {values['event_id']} repeated")
            out[values["event_id"]] = p
    return out


def score_files(predictions: Path, manifest: Path, flag_at: float = FLAG_AT) -> dict[str, Any]:
    """Every labelled manifest event must have a prediction (extra ones are an error too)."""
    try:
        events, problems = read_manifest(manifest, require_label=True)
    except ManifestError as exc:
        raise DataError(str(exc)) from None
    if problems:
        raise DataError(problems[0])
    probs = read_predictions(predictions)
    wanted = [e.event_id for e in events]
    absent = [i for i in wanted if i not in probs]
    extra = sorted(set(probs) - set(wanted))
    if absent:
        raise DataError(
            f"{predictions}: no prediction for {len(absent)} event(s) of {manifest} "
            f"(first: event_id {absent[0]})"
        )
    if extra:
        raise DataError(f"{predictions}: event_id {extra[0]} is not in {manifest}")
    p = np.array([probs[i] for i in wanted])
    y = np.array([e.label for e in events])
    report = binary_report(y, p)
    conf = confounding(p, y, [e.video_id for e in events], flag_at)
    return {
        "score": report["tail_f1"],
        **{k: v for k, v in report.items() if k != "baselines"},
        "baseline_all_tail_f1": report["baselines"]["all_tail"],
        "video_share": conf["video_share"],
        "confounding": conf["verdict"],
    }
