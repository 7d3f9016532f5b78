"""eeg2025's figures for `toolkit report`: the run's validation predictions against the truth.

The run folder keeps no per-window predictions, so the validation windows are read back from
the window cache (the run's recipe and seed select the same subjects) and the best
checkpoint predicts them."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from toolkit.competitions.eeg2025.models import nrmse
from toolkit.config.settings import get_settings
from toolkit.engine.rundir import RunDir
from toolkit.report.figures import predicted_vs_true

UNITS = {"rt_from_stimulus": "s"}


def validation_predictions(run: RunDir) -> tuple[np.ndarray, np.ndarray, str]:
    """(y_true, y_pred, target name) over the run's validation windows."""
    from toolkit.competitions.eeg2025.datamodule import EEG2025DataModule
    from toolkit.export.run import trained_model

    recipe, settings = run.recipe(), get_settings()
    seed = run.metrics().get("seed", settings.seed)
    datamodule = EEG2025DataModule(recipe.data, recipe.train.batch_size, settings, seed)
    datamodule.setup("validate")
    model = trained_model(run)
    truth, predicted = [], []
    with torch.inference_mode():
        for x, y in datamodule.val_dataloader():
            predicted.append(model(x).numpy())
            truth.append(y.numpy())
    target = datamodule.stats.get("target", "target")
    return np.concatenate(truth).ravel(), np.concatenate(predicted).ravel(), target


def report_figures(run: RunDir, out: Path) -> list[tuple[str, Path]]:
    """Predicted vs true on the validation windows, with the nRMSE."""
    y_true, y_pred, target = validation_predictions(run)
    name = f"{run.recipe().slug}-{run.path.name}-predicted-vs-true.png"
    score = f"nRMSE {nrmse(y_true, y_pred):.4f} on {len(y_true)} windows"
    path = predicted_vs_true(y_true, y_pred, out / name, title=target, unit=UNITS.get(target, ""),
                             score=score)  # fmt: skip
    return [(f"{target}: predicted vs true on the validation windows ({score})", path)]
