"""`toolkit hpo`'s cost per trial against `toolkit train` of the same recipe and values.

Both run in this process on the smoke data of eeg2025/c1-s4-hpo (after one warm-up run that
writes the synthetic data and window cache): N plain `train()` runs, then a study of N trials
whose space is pinned to those same values (so both train identical models), interleaved. The
difference is what the search adds per trial: the SQLite study, sampling, heartbeats, the
per-epoch pruning report; planning (resolving the recipe with every searched value, building
the model for model.* keys) is once per call and shown apart. Target: under 10 %.

Usage: python benchmarks/s4_hpo_overhead.py [--trials N] [--epochs E]
"""

from __future__ import annotations

import argparse
import io
import json
import statistics
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from toolkit.config.recipes import find_recipe, resolve_recipe
from toolkit.config.search_space import SearchRange
from toolkit.config.settings import get_settings
from toolkit.engine.rundir import RunDir
from toolkit.engine.train import train
from toolkit.hpo.search import plan_search, run_search
from toolkit.logs import quiet_libraries

RECIPE = "eeg2025/c1-s4-hpo"
VALUES = {"train.lr": 0.003, "model.kwargs.d_model": 16, "model.kwargs.n_layers": 2}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=2)
    args = parser.parse_args()
    quiet_libraries()
    quiet = Console(file=io.StringIO())
    with tempfile.TemporaryDirectory() as tmp:
        settings = get_settings(
            runs_dir=Path(tmp) / "runs", cache_dir=Path(tmp) / "cache", device="cpu"
        )
        sets = [f"{k}={json.dumps(v)}" for k, v in VALUES.items()]
        sets.append(f"train.epochs={args.epochs}")
        recipe = resolve_recipe(RECIPE, smoke=True, overrides=sets)
        train(recipe, settings, command="warm-up", run=RunDir(Path(tmp) / "warm"), console=quiet)

        started = time.perf_counter()
        plan, _ = plan_search(RECIPE, settings, smoke=True, sets=[], trials=args.trials,
                              epochs=args.epochs, entry_file=str(find_recipe(RECIPE).path),
                              pruning=True)  # fmt: skip
        planning = time.perf_counter() - started
        space = {k: SearchRange.model_validate({"choice": [v]}) for k, v in VALUES.items()}
        plan.hpo = plan.hpo.model_copy(update={"space": space})
        # Interleaved, so a change in the machine's load hits both alike. Each search call
        # reopens the study and runs one more trial, as a fresh `toolkit hpo` call would.
        plain, searched = [], []
        for i in range(args.trials):
            recipe = resolve_recipe(RECIPE, smoke=True, overrides=sets)
            started = time.perf_counter()
            train(recipe, settings, command="bench", run=RunDir(Path(tmp) / f"t{i}"),
                  console=quiet)  # fmt: skip
            plain.append(time.perf_counter() - started)
            plan.trials = i + 1
            started = time.perf_counter()
            study = run_search(plan, settings, quiet)
            searched.append(time.perf_counter() - started)
        assert len(study.trials) == args.trials
    plain_s, searched_s = statistics.median(plain), statistics.median(searched)

    table = Table(title=f"{RECIPE} --smoke, {args.epochs} epochs, {args.trials} runs each")
    for col in ("what", "seconds per run", "overhead"):
        table.add_column(col, justify="right")
    table.add_row("toolkit train (train()), median", f"{plain_s:.2f}", "")
    overhead = f"{100 * (searched_s / plain_s - 1):+.1f} %"
    table.add_row("toolkit hpo, one trial per call, median", f"{searched_s:.2f}", overhead)
    once = f"{100 * planning / (args.trials * plain_s):+.1f} % over {args.trials} trials"
    table.add_row("planning + space check (once per call)", f"{planning:.2f}", once)
    Console().print(table)


if __name__ == "__main__":
    main()
