"""The small interface every competition implements (a Protocol, not a base class)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
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


class Competition(Protocol):
    """One competition: its data, models, metric, submission format and harness."""

    name: str
    data_config: type[BaseModel]
    metric: Metric
    unavailable_modules: tuple[str, ...]  # packages the competition's runtime lacks

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
