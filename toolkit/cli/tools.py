"""`toolkit lr-find` and `toolkit test`: Lightning's LR finder, and evaluation without training."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from toolkit.cli.common import cli_errors, console, settings_from
from toolkit.cli.pipeline import RecipeArg, SetOpt, SmokeOpt, _run_dir


def lr_find_cmd(
    ctx: typer.Context,
    name: RecipeArg,
    set_: SetOpt = None,
    smoke: SmokeOpt = False,
    steps: Annotated[int, typer.Option(min=20, help="Optimiser steps of the range test.")] = 100,
    min_lr: Annotated[float, typer.Option(help="Smallest learning rate tried.")] = 1e-7,
    max_lr: Annotated[float, typer.Option(help="Largest learning rate tried.")] = 1.0,
    apply: Annotated[
        bool,
        typer.Option("--apply", help="Also write a recipe (extends this one) with that lr."),
    ] = False,
) -> None:
    """Lightning's learning-rate range test: prints the suggestion, saves the curve as PNG."""
    from toolkit.config.recipes import find_recipe, resolve_recipe
    from toolkit.engine.tools import find_lr

    with cli_errors():
        settings = settings_from(ctx)
        recipe = resolve_recipe(name, smoke=smoke, overrides=set_ or [],
                                recipes_dir=settings.recipes_dir)  # fmt: skip
        source = find_recipe(name, settings.recipes_dir).path
        found = find_lr(recipe, settings, source, steps=steps, min_lr=min_lr, max_lr=max_lr,
                        apply=apply)  # fmt: skip
        console.print(f"suggested lr [bold]{found.suggestion:.4g}[/] (curve: {found.plot})")
        if found.recipe_file is not None:
            smoke_flag = " --smoke" if smoke else ""
            console.print(f"recipe: {found.recipe_file}  (toolkit run {found.recipe_file}"
                          f"{smoke_flag})")  # fmt: skip


def test_cmd(
    ctx: typer.Context,
    run_dir: Annotated[Path, typer.Argument(help="A trained run folder.")],
    checkpoint: Annotated[
        str, typer.Option(help="best, last, or a checkpoint file.")
    ] = "best",
    set_: SetOpt = None,
) -> None:
    """Evaluate a trained run's checkpoint on its validation data, or on a test selection
    (`--set data...`), without training: writes test_metrics.json and the predictions."""
    from toolkit.engine.tools import test_run

    with cli_errors():
        run = _run_dir(run_dir)
        result = test_run(run, settings_from(ctx), checkpoint, set_ or [])
        metric = result["metric"]
        base = ", ".join(f"{k} {v:.4f}" for k, v in result.get("baselines", {}).items())
        console.print(
            f"test ({result['split']}, {result['samples']} items, {checkpoint}): {metric} "
            f"{result[f'test_{metric}']:.4f}" + (f" (baseline: {base})" if base else "")
        )
        console.print(f"wrote {run.path / 'test_metrics.json'}")
