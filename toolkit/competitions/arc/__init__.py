"""ARC Prize (ARC-AGI): a decoder-only transformer over one token per cell, conditioned on the
task's demonstrations; predictions voted across augmented views; an offline predict.py bundle."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import numpy as np
from torch import nn

from toolkit.competitions import register
from toolkit.competitions.arc.config import ARCData
from toolkit.competitions.protocol import EvalResult, Metric
from toolkit.errors import RecipeError


def greedy_exact(y_true: np.ndarray, y_pred: np.ndarray) -> float:
    """Share of sequences whose labelled tokens are all the argmax (teacher-forced): exactly the
    share that greedy decoding of the unaugmented view gets right."""
    labelled = y_true != -100
    hit = (y_pred.argmax(-1) == y_true) | ~labelled
    rows = labelled.any(axis=1)
    return float(hit.all(axis=1)[rows].mean()) if rows.any() else 0.0


class ARC:
    """The arc competition (see COMPETITIONS.md, section 2)."""

    name = "arc"
    data_config = ARCData
    metric = Metric("greedy_exact", "max", greedy_exact)
    # The Kaggle notebook has no toolkit; the bundle must need only numpy and onnxruntime.
    unavailable_modules = ("torch", "lightning", "pytorch_lightning", "braindecode", "torchvision")
    bundle_slots: ClassVar[dict[str, str]] = {}  # one model per submission
    # COMPETITIONS.md gives no submission limit for arc: `toolkit ledger --budget N` sets one.
    submission_budget: int | None = None

    def bundle_slot(self, recipe) -> str | None:
        return None

    def synthesize(self, root: Path, *, subjects: int, seed: int, **kwargs: Any) -> Path:
        from toolkit.competitions.arc.synth import write_synthetic

        return write_synthetic(root, train_tasks=subjects, seed=seed, **kwargs)

    def build_datamodule(self, recipe, settings):
        from toolkit.competitions.arc.datamodule import ARCDataModule

        seed = recipe.train.seed if recipe.train.seed is not None else settings.seed
        return ARCDataModule(recipe.data, recipe.train.batch_size, settings, seed)

    def check_model(self, recipe) -> None:
        from toolkit.competitions.arc.model import ARCTransformer
        from toolkit.config.kwargs import check_kwargs

        if recipe.model.name != "arc-transformer":
            raise RecipeError(f"model.name={recipe.model.name}: arc has only 'arc-transformer'")
        check_kwargs(ARCTransformer, recipe.model.kwargs, provided=("max_len",))

    def build_model(self, recipe, stats: dict[str, Any]) -> nn.Module:
        from toolkit.competitions.arc.model import ARCTransformer

        self.check_model(recipe)
        return ARCTransformer(**recipe.model.kwargs, max_len=stats["max_len"])

    def build_loss(self, recipe) -> nn.Module:
        from toolkit.competitions.arc.model import TokenLoss

        return TokenLoss()

    def evaluate(self, model: nn.Module, datamodule, recipe) -> EvalResult:
        from toolkit.competitions.arc.evaluate import evaluate_tasks

        return evaluate_tasks(
            model, datamodule.eval_tasks, recipe.data.evaluation, datamodule.stats["max_len"]
        )

    def score(self, submission: Path, answers: Path) -> dict[str, Any]:
        from toolkit.competitions.arc.score import score_files

        return score_files(submission, answers)

    def predict(self, content: Path, inputs: Path, out: Path, device: str, sandbox) -> str:
        from toolkit.bundle.predict import run_predict_script

        return run_predict_script(content, inputs, out, device, sandbox)

    def write_bundle(self, runs, content: Path, reference: Path) -> dict[str, Any]:
        from toolkit.competitions.arc.submission import write_arc_bundle

        return write_arc_bundle(runs, content, reference)

    def verify_bundle(self, content: Path, reference: Path, sandbox, device: str):
        from toolkit.competitions.arc.submission import verify_arc_bundle

        return verify_arc_bundle(content, reference, sandbox, device)

    def report_figures(self, run, out: Path) -> list[tuple[str, Path]]:
        from toolkit.competitions.arc.report import report_figures

        return report_figures(run, out)


register(ARC())
