"""Calf cross-sucking events (ear | tail) in videos: r3d_18 on event clips decoded once with
PyAV, honest splits, N-clip TTA, calibration and a confounding check; an offline predict.py
bundle (numpy + av + onnxruntime)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

from torch import nn

from toolkit.competitions import register
from toolkit.competitions.crosssucking.config import CrossSuckingData
from toolkit.competitions.crosssucking.metrics import tail_f1_from_logits
from toolkit.competitions.protocol import EvalResult, Metric
from toolkit.errors import RecipeError


class CrossSucking:
    """The crosssucking competition (see COMPETITIONS.md, section 4)."""

    name = "crosssucking"
    data_config = CrossSuckingData
    metric = Metric("tail_f1", "max", tail_f1_from_logits)
    # The users' inference machines get numpy, av and onnxruntime; verify proves it.
    unavailable_modules = ("torch", "lightning", "pytorch_lightning", "braindecode", "torchvision")
    bundle_slots: ClassVar[dict[str, str]] = {}
    submission_budget: int | None = None  # the users' own data: no leaderboard

    def bundle_slot(self, recipe) -> str | None:
        return None

    def synthesize(self, root: Path, *, subjects: int, seed: int, **kwargs: Any) -> Path:
        """`toolkit data synth crosssucking DIR --subjects N`: N is the number of pool videos
        (events.csv); test.csv gets a third as many held-out videos (at least one)."""
        from toolkit.competitions.crosssucking.synth import write_synthetic

        kwargs.setdefault("test_videos", max(1, subjects // 3))
        return write_synthetic(root, videos=subjects, seed=seed, **kwargs)

    def build_datamodule(self, recipe, settings):
        from toolkit.competitions.crosssucking.datamodule import CrossSuckingDataModule

        seed = recipe.train.seed if recipe.train.seed is not None else settings.seed
        datamodule = CrossSuckingDataModule(recipe.data, recipe.train.batch_size, settings, seed)
        weights = recipe.model.kwargs.get("weights")
        if weights:  # resolved here (settings know the data folder); build_model reads stats
            path = Path(weights).expanduser()
            datamodule.pretrained = str(path if path.is_absolute() else settings.data_dir / path)
        return datamodule

    def check_model(self, recipe) -> None:
        from toolkit.competitions.crosssucking.model import R3D18Classifier
        from toolkit.config.kwargs import check_kwargs

        if recipe.model.name != "r3d_18":
            raise RecipeError(f"model.name={recipe.model.name}: crosssucking has only 'r3d_18'")
        check_kwargs(R3D18Classifier, recipe.model.kwargs)

    def build_model(self, recipe, stats: dict[str, Any]) -> nn.Module:
        from toolkit.competitions.crosssucking.model import R3D18Classifier

        self.check_model(recipe)
        kwargs = {**recipe.model.kwargs, "weights": stats.get("pretrained_weights")}
        return R3D18Classifier(**kwargs)

    def build_loss(self, recipe) -> nn.Module:
        return nn.CrossEntropyLoss()

    def evaluate(self, model: nn.Module, datamodule, recipe) -> EvalResult:
        from toolkit.competitions.crosssucking.evaluate import evaluate_validation

        return evaluate_validation(model, datamodule, recipe)

    def after_training(self, model: nn.Module, datamodule, recipe, run) -> dict[str, Any]:
        from toolkit.competitions.crosssucking.evaluate import after_training

        return after_training(model, datamodule, recipe, run)

    def report_figures(self, run, out: Path) -> list[tuple[str, Path]]:
        """The test reliability diagram and confusion matrix the run wrote."""
        import shutil

        figures = []
        for caption, name in (
            ("Reliability of P(tail), test events", "reliability.png"),
            ("Confusion matrix, test events", "confusion.png"),
        ):
            if (run.path / name).is_file():
                out.mkdir(parents=True, exist_ok=True)
                figures.append((caption, Path(shutil.copyfile(run.path / name, out / name))))
        return figures

    def score(self, submission: Path, answers: Path) -> dict[str, Any]:
        from toolkit.competitions.crosssucking.score import score_files

        return score_files(submission, answers)

    def predict(self, content: Path, inputs: Path, out: Path, device: str, sandbox) -> str:
        """predict.py in the verify sandbox; videos relative to the manifest's folder."""
        from toolkit.bundle.predict import run_predict_script

        return run_predict_script(content, inputs, out, device, sandbox)

    def write_bundle(self, runs, content: Path, reference: Path) -> dict[str, Any]:
        from toolkit.competitions.crosssucking.submission import write_crosssucking_bundle

        return write_crosssucking_bundle(runs, content, reference)

    def verify_bundle(self, content: Path, reference: Path, sandbox, device: str):
        from toolkit.competitions.crosssucking.submission import verify_crosssucking_bundle

        return verify_crosssucking_bundle(content, reference, sandbox, device)


register(CrossSucking())
