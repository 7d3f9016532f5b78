"""Lightning's controls beside training: the learning-rate finder and test-only evaluation."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import lightning as L
import numpy as np
import yaml

from toolkit.competitions import get_competition
from toolkit.config.schema import Recipe
from toolkit.config.settings import Settings
from toolkit.engine.rundir import RunDir, recipe_runs_dir
from toolkit.engine.session import bare_trainer, build_module, layout, scored, scratch_dir
from toolkit.errors import ToolkitError, TrainingError
from toolkit.fileio import write_json, write_text


def _prepare(recipe: Recipe, settings: Settings) -> tuple[Any, L.LightningDataModule]:
    competition = get_competition(recipe.competition)
    check_model = getattr(competition, "check_model", None)
    if check_model is not None:
        check_model(recipe)
    seed = recipe.train.seed if recipe.train.seed is not None else settings.seed
    L.seed_everything(seed, workers=True, verbose=False)
    datamodule = competition.build_datamodule(recipe, settings)
    datamodule.setup("fit")
    return competition, datamodule


@dataclass(frozen=True)
class LrFinding:
    """What `toolkit lr-find` found and wrote."""

    suggestion: float
    folder: Path
    plot: Path
    recipe_file: Path | None


def find_lr(
    recipe: Recipe,
    settings: Settings,
    source: Path,
    *,
    steps: int = 100,
    min_lr: float = 1e-7,
    max_lr: float = 1.0,
    apply: bool = False,
) -> LrFinding:
    """Lightning's LR range test on the recipe's model and data: the suggestion, the loss
    curve as lr_find.png, the raw curve as lr_find.json, and with `apply` a recipe that
    `extends:` `source` with only `train.lr` changed (in the smoke block too)."""
    from lightning.pytorch.tuner import Tuner

    competition, datamodule = _prepare(recipe, settings)
    module = build_module(recipe, competition, dict(datamodule.stats))
    if isinstance(module.configure_optimizers(), list | tuple):
        raise TrainingError("lr-find needs one optimiser; this recipe's model configures several")
    where = layout(recipe, settings)
    with scratch_dir("lr-find") as tmp:
        trainer = bare_trainer(recipe, where, Path(tmp))
        try:
            finder = Tuner(trainer).lr_find(
                module, datamodule=datamodule, min_lr=min_lr, max_lr=max_lr,
                num_training=steps, update_attr=False,
            )  # fmt: skip
        except Exception as exc:  # Lightning's MisconfigurationException and friends
            raise TrainingError(f"lr-find: {exc}") from None
    suggestion = finder.suggestion() if finder is not None else None
    if suggestion is None:
        raise TrainingError(
            "lr-find: no suggestion (the loss did not fall steadily over the range); try "
            "--steps 200 or a narrower --min-lr/--max-lr"
        )
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    folder = recipe_runs_dir(settings.runs_dir, recipe.name) / "lr-find" / stamp
    folder.mkdir(parents=True, exist_ok=True)
    import matplotlib

    matplotlib.use("Agg")
    figure = finder.plot(suggest=True, show=False)
    figure.axes[0].set_title(f"{recipe.name}: suggested lr {suggestion:.3g}")
    plot = folder / "lr_find.png"
    figure.savefig(plot, dpi=120, bbox_inches="tight")
    write_json(folder / "lr_find.json", {
        "recipe": recipe.name, "suggestion": suggestion, "lr": finder.results["lr"],
        "loss": finder.results["loss"], "steps": steps, "min_lr": min_lr, "max_lr": max_lr,
    })  # fmt: skip
    recipe_file = None
    if apply:
        # <competition>/<stem>-lr.yaml: runs of it are named <competition>/<stem>-lr
        stem = recipe.name.split("/")[-1]
        recipe_file = folder / recipe.competition / f"{stem}-lr.yaml"
        body = {"extends": str(source), "train": {"lr": float(f"{suggestion:.4g}")}}
        if recipe.smoke_applied or recipe.smoke:
            body["smoke"] = {"train": {"lr": float(f"{suggestion:.4g}")}}
        header = (
            f"# {recipe.name} with the learning rate `toolkit lr-find` suggested ({stamp});\n"
            f"#   toolkit run {recipe_file}\n"
        )
        write_text(recipe_file, header + yaml.safe_dump(body, sort_keys=False))
    return LrFinding(float(suggestion), folder, plot, recipe_file)


def test_run(
    run: RunDir, settings: Settings, checkpoint: str = "best", data_sets: list[str] | None = None
) -> dict[str, Any]:
    """Evaluate a trained run without training: its checkpoint (`best`, `last` or a path) on
    its validation data, or on the datamodule's test selection when it has one (e.g. with
    `--set data...` naming another release). Writes test_metrics.json and test_predictions
    (.npz, and .csv for one output per item) into the run folder; returns the metrics."""
    from toolkit.config.recipes import apply_overrides

    recipe = run.recipe()
    if data_sets:
        bad = [s for s in data_sets if not s.startswith("data.")]
        if bad:
            raise ToolkitError(f"test --set {bad[0]}: only data.* keys may change for a test")
        recipe = apply_overrides(recipe, data_sets)
    path = {"best": run.best_checkpoint, "last": run.last_checkpoint}.get(
        checkpoint, Path(checkpoint).expanduser()
    )
    if not Path(path).is_file():
        raise ToolkitError(
            f"{path}: no checkpoint to test (is {run.path} trained? `toolkit train` writes "
            "checkpoints/best.ckpt and last.ckpt)"
        )
    competition, datamodule = _prepare(recipe, settings)
    module = build_module(recipe, competition, dict(datamodule.stats))
    where = layout(recipe, settings)
    from lightning.pytorch.utilities.model_helpers import is_overridden

    has_test = is_overridden("test_dataloader", datamodule, L.LightningDataModule)
    loader = datamodule.test_dataloader() if has_test else None
    split = "test" if loader is not None else "validation"
    loader = loader if loader is not None else datamodule.val_dataloader()
    with scratch_dir("test") as tmp:
        bare_trainer(recipe, where, Path(tmp)).validate(
            module, dataloaders=loader, ckpt_path=str(path), verbose=False
        )
    y_true, y_pred = module.last_val_predictions
    result = scored("test", competition.metric, datamodule, y_true, y_pred)
    result.update({
        "split": split,
        "samples": len(y_true),
        "checkpoint": str(path),
        "data_overrides": data_sets or [],
    })  # fmt: skip
    write_json(run.path / "test_metrics.json", result)
    _write_predictions(run.path, y_true, y_pred)
    return result


def _write_predictions(folder: Path, y_true: np.ndarray, y_pred: np.ndarray) -> None:
    from toolkit.fileio import atomic_path

    with atomic_path(folder / "test_predictions.npz") as tmp, tmp.open("wb") as fh:
        np.savez(fh, y_true=y_true, y_pred=y_pred)
    if y_pred.ndim <= 2 and (y_pred.ndim == 1 or y_pred.shape[1] == 1):
        buf = io.StringIO()
        writer = csv.writer(buf)
        writer.writerow(["index", "y_true", "y_pred"])
        for i, (t, p) in enumerate(zip(y_true.reshape(-1), y_pred.reshape(-1), strict=True)):
            writer.writerow([i, f"{t:.6g}", f"{p:.6g}"])
        write_text(folder / "test_predictions.csv", buf.getvalue())
