"""MABe 2025 mouse social behaviour: pose tracks -> per-frame actions per (agent, target) ->
submission.csv; a temporal network over windows, whitelist-masked, post-processed so that the
overlap rule always holds; an offline predict.py bundle (numpy, pandas/pyarrow, onnxruntime)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from torch import nn

from toolkit.competitions import register
from toolkit.competitions.mabe.config import MABeData
from toolkit.competitions.protocol import EvalResult, Metric
from toolkit.errors import RecipeError


def _frame_f1(y_true, y_pred) -> float:
    from toolkit.competitions.mabe.datamodule import frame_f1

    return frame_f1(y_true, y_pred)


class MABe:
    """The mabe competition (see COMPETITIONS.md, section 3)."""

    name = "mabe"
    data_config = MABeData
    # Validation windows' frame-level F1 (fast); the official F-beta is `evaluate`.
    metric = Metric("frame_f1", "max", _frame_f1)
    # The Kaggle notebook runs the bundle without the toolkit: numpy, pandas, onnxruntime.
    unavailable_modules = ("torch", "lightning", "pytorch_lightning", "braindecode", "torchvision")
    bundle_slots: ClassVar[dict[str, str]] = {}

    def bundle_slot(self, recipe) -> str | None:
        return None

    def synthesize(self, root: Path, *, subjects: int, seed: int, **kwargs: Any) -> Path:
        """`subjects` is the number of training videos (spread over three labs); the test
        split gets a third as many (at least one per lab) and solution.csv."""
        from toolkit.competitions.mabe.synth import write_synthetic

        return write_synthetic(root, videos=max(subjects, 3), seed=seed, **kwargs)

    def build_datamodule(self, recipe, settings):
        from toolkit.competitions.mabe.datamodule import MABeDataModule

        seed = recipe.train.seed if recipe.train.seed is not None else settings.seed
        return MABeDataModule(recipe.data, recipe.train.batch_size, settings, seed)

    def build_model(self, recipe, stats: dict[str, Any]) -> nn.Module:
        from toolkit.competitions.mabe.model import TemporalNet

        if recipe.model.name != "temporal-net":
            raise RecipeError(f"model.name={recipe.model.name}: mabe has only 'temporal-net'")
        return TemporalNet(
            stats["n_features"], len(stats["outputs"]), stats.get("feature_mean"),
            stats.get("feature_std"), **recipe.model.kwargs,
        )  # fmt: skip

    def build_loss(self, recipe) -> nn.Module:
        from toolkit.competitions.mabe.model import MaskedBCE

        loss = recipe.data.loss
        return MaskedBCE(loss.class_weights, loss.positive_weight)

    def evaluate(self, model: nn.Module, datamodule, recipe) -> EvalResult:
        from toolkit.competitions.mabe.evaluate import evaluate_model

        return evaluate_model(model, datamodule, recipe)

    def after_training(self, model: nn.Module, datamodule, recipe, run) -> dict[str, Any]:
        from toolkit.competitions.mabe.evaluate import after_training

        return after_training(model, datamodule, recipe, run)

    def report_figures(self, run, out: Path):
        from toolkit.competitions.mabe.evaluate import report_figures

        return report_figures(run, out)

    def score(self, submission: Path, answers: Path) -> dict[str, Any]:
        from toolkit.competitions.mabe.score import score_files

        return score_files(submission, answers)

    def predict(self, content: Path, inputs: Path, out: Path, device: str, sandbox) -> str:
        from toolkit.bundle.predict import run_predict_script

        return run_predict_script(content, inputs, out, device, sandbox)

    def write_bundle(self, runs, content: Path, reference: Path) -> dict[str, Any]:
        from toolkit.competitions.mabe.submission import write_mabe_bundle

        return write_mabe_bundle(runs, content, reference)

    def verify_bundle(self, content: Path, reference: Path, sandbox, device: str):
        from toolkit.competitions.mabe.submission import verify_mabe_bundle

        return verify_mabe_bundle(content, reference, sandbox, device)


register(MABe())
