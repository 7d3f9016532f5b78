"""Training-time evaluation: the bundle's own predictor (standalone.py) driven by the torch
model, scored on the evaluation tasks, with the copy-input baseline beside it."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch
from torch import nn

from toolkit.competitions.arc.config import DecodeConfig
from toolkit.competitions.arc.model import ARCTransformer
from toolkit.competitions.arc.score import score_submission
from toolkit.competitions.arc.standalone import predict_all
from toolkit.competitions.arc.tasks import Task
from toolkit.competitions.protocol import EvalResult
from toolkit.export.models import numpy_forward


class TorchDecoder:
    """The eager model's key/value-cached decoding as the predictor's Decoder (numpy in/out)."""

    def __init__(self, model: ARCTransformer):
        self.model = model
        self.device = next(model.parameters()).device

    def start(self, history: np.ndarray) -> tuple[np.ndarray, Any]:
        return self.step(history, self.model.empty_cache(len(history), self.device))

    def step(self, history: np.ndarray, cache: Any) -> tuple[np.ndarray, Any]:
        with torch.inference_mode():
            x = torch.from_numpy(np.ascontiguousarray(history)).to(self.device)
            logits, keys, values = self.model.decode(x, *cache)
        return logits.float().cpu().numpy(), (keys, values)

    def select(self, cache: Any, rows: np.ndarray) -> Any:
        index = torch.from_numpy(rows).to(self.device)
        return cache[0].index_select(1, index), cache[1].index_select(1, index)


def copy_input_submission(tasks: dict[str, Task]) -> dict[str, list[dict[str, Any]]]:
    """The trivial baseline: both attempts are the test input."""
    return {
        t: [{"attempt_1": g.tolist(), "attempt_2": g.tolist()} for g in task.test_inputs]
        for t, task in tasks.items()
    }


def evaluate_tasks(
    model: nn.Module, tasks: dict[str, Task], cfg: DecodeConfig, max_len: int
) -> EvalResult:
    """Predict every task (two attempts per test input) and score it; model left as it was."""
    chosen = dict(list(tasks.items())[: cfg.max_tasks] if cfg.max_tasks else tasks.items())
    challenges = {t: task.challenge() for t, task in chosen.items()}
    solutions = {t: [g.tolist() for g in task.test_outputs or []] for t, task in chosen.items()}
    was_training = model.training
    model.eval()
    started = time.monotonic()
    try:
        submission, failures = predict_all(
            numpy_forward(model), challenges, task_seconds=cfg.task_seconds, max_len=max_len,
            n_views=cfg.views, rank=cfg.rank, warn=lambda message: None,
            decoder=TorchDecoder(model) if isinstance(model, ARCTransformer) else None,
        )  # fmt: skip
    finally:
        model.train(was_training)
    report = score_submission(submission, solutions)
    baseline = score_submission(copy_input_submission(chosen), solutions)
    predictions = {
        t: {
            "attempts": [[e["attempt_1"], e["attempt_2"]] for e in submission[t]],
            "correct": report["correct"][t],
            "score": sum(report["correct"][t]) / len(report["correct"][t]),
            **({"note": failures[t]} if t in failures else {}),
        }
        for t in chosen
    }
    details = {
        "per_output": report["per_output"],
        "solved_tasks": report["solved_tasks"],
        "tasks": report["tasks"],
        "outputs": report["outputs"],
        "padded_or_cut": len(failures),
        "seconds": round(time.monotonic() - started, 2),
        "baselines": {"copy_input": baseline["score"]},
        "views": cfg.views,
        "rank": cfg.rank,
    }
    return EvalResult(report["score"], predictions, details)
