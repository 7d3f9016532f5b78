"""The small interface every competition implements (a Protocol, not a base class)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Protocol

import numpy as np
from pydantic import BaseModel

if TYPE_CHECKING:
    import lightning as L
    from torch import nn

    from toolkit.bundle.sandbox import Sandbox
    from toolkit.config.schema import Recipe
    from toolkit.config.settings import Settings
    from toolkit.engine.rundir import RunDir


@dataclass(frozen=True)
class Metric:
    """The competition's score: a function of (y_true, y_pred) and which direction is better."""

    name: str
    mode: Literal["min", "max"]
    fn: Callable[[np.ndarray, np.ndarray], float]


@dataclass(frozen=True)
class Check:
    """One verify check: what was checked, whether it passed, and the detail."""

    name: str
    passed: bool
    detail: str = ""


@dataclass(frozen=True)
class EvalResult:
    """What an `evaluate` hook returns: the score (better in the direction of the competition's
    `metric.mode`), JSON-ready predictions per item (written to eval_predictions.json) and extra
    figures (counts, baselines, timings)."""

    score: float
    predictions: dict[str, Any]
    details: dict[str, Any] = field(default_factory=dict)


class Competition(Protocol):
    """One competition: its data, models, metric, submission format and harness."""

    name: str
    data_config: type[BaseModel]
    metric: Metric
    unavailable_modules: tuple[str, ...]  # packages the competition's runtime lacks
    # Named model slots of one submission (eeg2025: c1, c2 -> help text); empty: one model.
    bundle_slots: dict[str, str]

    def bundle_slot(self, recipe: Recipe) -> str | None:
        """Which of `bundle_slots` a run of this recipe fills (None without slots)."""
        ...

    def synthesize(self, root: Path, *, subjects: int, seed: int) -> Path:
        """Write tiny synthetic data in the competition's REAL on-disk layout under `root`."""
        ...

    def build_datamodule(self, recipe: Recipe, settings: Settings) -> L.LightningDataModule:
        """The datamodule for this recipe; after `setup()` it exposes `stats` (a JSON dict)
        and `reference_inputs(n)` (inputs used to check exported models)."""
        ...

    def build_model(self, recipe: Recipe, stats: dict[str, Any]) -> nn.Module:
        """The model as the harness will call it (preprocessing included)."""
        ...

    def build_loss(self, recipe: Recipe) -> nn.Module:
        """The training loss."""
        ...

    def write_bundle(self, runs: list[RunDir], content: Path, reference: Path) -> dict[str, Any]:
        """Write the upload's files into `content` (zipped flat afterwards) and the reference
        inputs/outputs for verify into `reference`; return manifest fields (models, scores)."""
        ...

    def verify_bundle(
        self, content: Path, reference: Path, sandbox: Sandbox, device: str
    ) -> list[Check]:
        """Call the unpacked upload the way the competition's harness does, inside `sandbox`,
        and compare with the reference outputs saved beside the bundle."""
        ...


# Optional hooks. A competition defines them only when they make sense for it; the core looks
# them up with getattr and behaves as before without them.


class Evaluates(Protocol):
    """Scores the model the way the competition does (e.g. decoding and voting) every
    `train.eval_every_n_epochs` epochs; the best checkpoint then follows `eval_score`."""

    def evaluate(
        self, model: nn.Module, datamodule: L.LightningDataModule, recipe: Recipe
    ) -> EvalResult: ...


class Scores(Protocol):
    """`toolkit score COMPETITION SUBMISSION ANSWERS`: validate strictly, then score."""

    def score(self, submission: Path, answers: Path) -> dict[str, Any]:
        """A dict with `score` (the headline) and any other figures worth printing."""
        ...


class Predicts(Protocol):
    """`toolkit predict BUNDLE INPUT --out OUT`: run an unpacked bundle's predictor offline."""

    def predict(
        self, content: Path, inputs: Path, out: Path, device: str, sandbox: Sandbox
    ) -> str:
        """Write `out` by running the bundle's predictor in `sandbox` (usually through
        `toolkit.bundle.predict.run_predict_script`); return a one-line summary."""
        ...


class AfterTraining(Protocol):
    """Runs once after training, with the best checkpoint's weights loaded into `model`: a
    held-out test evaluation, reports, figures (written under `run.path`). The returned fields
    join metrics.json."""

    def after_training(
        self, model: nn.Module, datamodule: L.LightningDataModule, recipe: Recipe, run: RunDir
    ) -> dict[str, Any]: ...


class Reports(Protocol):
    """`toolkit report RUN_OR_BUNDLE`: the competition's own figures (predicted vs true, task
    grids, reliability diagrams, per-action F1) as PNG files written into `out`, from what the
    run folder holds (metrics.json, eval_predictions.json, test outputs)."""

    def report_figures(self, run: RunDir, out: Path) -> list[tuple[str, Path]]:
        """(caption, PNG path) pairs, in the order the page shows them."""
        ...


class ChecksModel(Protocol):
    """Validates `model.name` and `model.kwargs` before any data is read (fail in seconds)."""

    def check_model(self, recipe: Recipe) -> None:
        """Raise RecipeError naming the key that is wrong."""
        ...
