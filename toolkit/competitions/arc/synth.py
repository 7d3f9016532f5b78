"""Synthetic ARC tasks in the real layout (one JSON file per task), and the edge-case
challenges that verify feeds a bundle (30x30 and 1x1 grids, several test inputs, a bad task)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from toolkit.competitions.arc.standalone import dihedral
from toolkit.fileio import write_json

Rule = Callable[[np.ndarray], np.ndarray]


def _grid(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Mostly background (0) with a few coloured cells."""
    colours = rng.choice(np.arange(1, 10), size=3, replace=False)
    cells = rng.choice(np.concatenate([[0, 0, 0], colours]), size=(h, w))
    return cells.astype(np.int64)


def _rule(rng: np.random.Generator) -> tuple[str, Rule]:
    kind = int(rng.integers(3))
    if kind == 0:
        k = int(rng.integers(1, 8))
        return f"dihedral-{k}", lambda g: dihedral(g, k)
    if kind == 1:
        mapping = np.concatenate([[0], np.roll(np.arange(1, 10), int(rng.integers(1, 9)))])
        return "recolour", lambda g: mapping[g]
    return "tile-2x1", lambda g: np.concatenate([g, g], axis=0)


def synthetic_task(rng: np.random.Generator, max_side: int, n_train: int, n_test: int) -> dict:
    """One task: a random rule applied to random grids (test pairs carry outputs)."""
    name, rule = _rule(rng)
    pairs = []
    for _ in range(n_train + n_test):
        h = int(rng.integers(1, max(2, max_side // 2 if name == "tile-2x1" else max_side) + 1))
        w = int(rng.integers(1, max_side + 1))
        grid = _grid(rng, h, w)
        pairs.append({"input": grid.tolist(), "output": rule(grid).tolist()})
    return {"train": pairs[:n_train], "test": pairs[n_train:], "_rule": name}


def write_task_folder(folder: Path, n: int, max_side: int, seed: int, prefix: str) -> Path:
    """`n` task files `<prefix><index>.json` in `folder`."""
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        task = synthetic_task(rng, max_side, int(rng.integers(2, 5)), 1 + int(i % 4 == 3))
        task.pop("_rule")
        write_json(folder / f"{prefix}{i:04x}.json", task)
    return folder


def write_synthetic(
    root: Path, *, train_tasks: int = 24, eval_tasks: int = 6, max_side: int = 5, seed: int = 0
) -> Path:
    """`root/training/` and `root/evaluation/`, as in the ARC-AGI repositories."""
    write_task_folder(root / "training", train_tasks, max_side, seed, "5a")
    write_task_folder(root / "evaluation", eval_tasks, max_side, seed + 1, "e7")
    return root


def verify_challenges(seed: int = 123) -> tuple[dict[str, Any], dict[str, int]]:
    """Unseen tasks in Kaggle's challenges layout with the edge cases a submission must survive,
    and the number of test inputs of each. Task `badbad00` is malformed on purpose (a ragged
    demonstration grid): the predictor must pad it and warn, not fail the file."""
    rng = np.random.default_rng(seed)
    tasks: dict[str, Any] = {}
    small = synthetic_task(rng, 4, 3, 1)
    big_in = _grid(rng, 30, 30)
    tasks["0a0b0c01"] = {k: v for k, v in small.items() if k != "_rule"}
    tasks["30x30big"] = {
        "train": [{"input": _grid(rng, 3, 3).tolist(), "output": _grid(rng, 3, 3).tolist()}],
        "test": [{"input": big_in.tolist()}],
    }
    tasks["1x1tiny0"] = {
        "train": [{"input": [[c]], "output": [[(c + 1) % 10]]} for c in (1, 4, 7)],
        "test": [{"input": [[2]]}],
    }
    several = synthetic_task(rng, 4, 3, 3)
    tasks["multi3ts"] = {k: v for k, v in several.items() if k != "_rule"}
    tasks["badbad00"] = {
        "train": [{"input": [[1, 2], [3]], "output": [[1]]}],
        "test": [{"input": [[1]]}, {"input": [[2]]}],
    }
    for task in tasks.values():
        for pair in task["test"]:
            pair.pop("output", None)
    counts = {task_id: len(task["test"]) for task_id, task in tasks.items()}
    return tasks, counts
