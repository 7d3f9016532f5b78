"""Evaluation with N clips per event (the bundle's own clip sampling and aggregation, driven
by the eager model): every validation epoch (tail F1 selects the checkpoint) and, after
training, on the test events with predictions, metrics, figures and the confounding report."""

from __future__ import annotations

import csv
import logging
from typing import Any

import numpy as np
from torch import nn

from toolkit.competitions.crosssucking.events import ClipEvent
from toolkit.competitions.crosssucking.metrics import binary_report, confounding
from toolkit.competitions.crosssucking.standalone import LABELS, tail_probabilities
from toolkit.competitions.protocol import EvalResult
from toolkit.export.models import numpy_forward
from toolkit.fileio import atomic_path, write_json

log = logging.getLogger(__name__)


def event_probabilities(model: nn.Module, datamodule, events: list[ClipEvent]) -> np.ndarray:
    """P(tail) per event with the recipe's TTA; the model is left in the mode it was in."""
    tta = datamodule.cfg.tta
    was_training = model.training
    model.eval()
    try:
        clip_sets = (datamodule.clips(e, tta.clips_per_event) for e in events)
        probs = tail_probabilities(numpy_forward(model), clip_sets, tta.aggregation, tta.batch_size)
    finally:
        model.train(was_training)
    return np.array(probs)


def prediction_rows(events: list[ClipEvent], probs: np.ndarray) -> list[dict[str, Any]]:
    return [
        {
            "event_id": e.event.event_id,
            "video_id": e.video_id,
            "video": e.event.video,
            "start": e.event.start,
            "end": e.event.end,
            "label": LABELS[e.label],
            "p_tail": round(float(p), 6),
            "prediction": LABELS[int(p >= 0.5)],
        }
        for e, p in zip(events, probs, strict=True)
    ]


def full_report(events: list[ClipEvent], probs: np.ndarray, flag_at: float) -> dict[str, Any]:
    """Metrics + confounding for one side's events."""
    y = np.array([e.label for e in events])
    report = binary_report(y, probs)
    report["confounding"] = confounding(probs, y, [e.video_id for e in events], flag_at)
    return report


def evaluate_validation(model: nn.Module, datamodule, recipe) -> EvalResult:
    """TTA tail F1 on the validation events (the score the best checkpoint follows)."""
    events = datamodule.val_events
    probs = event_probabilities(model, datamodule, events)
    report = full_report(events, probs, datamodule.cfg.confound_flag)
    predictions = {r["event_id"]: r for r in prediction_rows(events, probs)}
    conf = report.pop("confounding")
    details = {k: v for k, v in report.items()}
    details["video_share"] = conf["video_share"]
    details["confounding_flagged"] = conf["flagged"]
    details["clips_per_event"] = datamodule.cfg.tta.clips_per_event
    details["aggregation"] = datamodule.cfg.tta.aggregation
    return EvalResult(report["tail_f1"], predictions, details)


def write_csv(path, rows: list[dict[str, Any]]) -> None:
    with atomic_path(path) as tmp, tmp.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


def after_training(model: nn.Module, datamodule, recipe, run) -> dict[str, Any]:
    """Test evaluation with the best weights: test_predictions.csv, test_metrics.json (with the
    confounding report), reliability and confusion PNGs, split_report.json; figures for
    metrics.json."""
    from toolkit.competitions.crosssucking.plots import confusion_png, reliability_png

    write_json(run.path / "split_report.json", datamodule.split)
    events = datamodule.test_events
    if not events:
        log.warning("no test events (data.test_manifest is unset or empty): no test evaluation")
        return {"test": None}
    probs = event_probabilities(model, datamodule, events)
    report = full_report(events, probs, datamodule.cfg.confound_flag)
    report["clips_per_event"] = datamodule.cfg.tta.clips_per_event
    report["aggregation"] = datamodule.cfg.tta.aggregation
    write_csv(run.path / "test_predictions.csv", prediction_rows(events, probs))
    write_json(run.path / "test_metrics.json", report)
    y = np.array([e.label for e in events])
    reliability_png(y, probs, run.path / "reliability.png")
    confusion_png(y, probs, run.path / "confusion.png")
    conf = report["confounding"]
    if conf["flagged"]:
        log.warning("confounding: %s", conf["verdict"])
    keys = (
        "tail_recall",
        "tail_precision",
        "tail_f1",
        "macro_f1",
        "roc_auc",
        "ece_positive_class_15",
        "ece_top_label_15",
        "events",
        "tail_events",
    )
    summary = {k: report[k] for k in keys}
    summary["confounding_flagged"] = conf["flagged"]
    summary["video_share"] = conf["video_share"]
    return {"test": summary}
