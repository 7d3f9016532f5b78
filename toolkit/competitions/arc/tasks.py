"""Read ARC tasks: a folder of task JSON files (ARC-AGI-1/2 layout) or Kaggle's
`*_challenges.json` (+ `*_solutions.json`). Every problem is one DataError naming the task."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from toolkit.competitions.arc.standalone import grid_problem
from toolkit.errors import DataError

Pair = tuple[np.ndarray, np.ndarray]


@dataclass(frozen=True)
class Task:
    """One task: demonstration pairs, test inputs and (when known) test outputs."""

    id: str
    train: list[Pair]
    test_inputs: list[np.ndarray]
    test_outputs: list[np.ndarray] | None

    @property
    def pairs(self) -> list[Pair]:
        """Every pair with a known output (demos, then solved test pairs)."""
        solved = list(zip(self.test_inputs, self.test_outputs or [], strict=False))
        return [*self.train, *solved]

    def challenge(self) -> dict[str, Any]:
        """The task in Kaggle's challenges layout (no test outputs)."""
        return {
            "train": [{"input": i.tolist(), "output": o.tolist()} for i, o in self.train],
            "test": [{"input": i.tolist()} for i in self.test_inputs],
        }


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except OSError as exc:
        raise DataError(f"{path}: cannot read ({exc.strerror or exc})") from None
    except json.JSONDecodeError as exc:
        raise DataError(
            f"{path}: malformed JSON at line {exc.lineno}, column {exc.colno} ({exc.msg})"
        ) from None


def _grid(value: Any, where: str) -> np.ndarray:
    problem = grid_problem(value)
    if problem is not None:
        raise DataError(f"{where} {problem}")
    return np.array(value, dtype=np.int64)


def parse_task(task_id: str, data: Any, where: str, solutions: list[Any] | None = None) -> Task:
    """Validate one task's JSON; outputs of test pairs come from the pairs or `solutions`."""
    prefix = f"{where}: task {task_id}:"
    if not isinstance(data, dict):
        raise DataError(f"{prefix} expected an object with 'train' and 'test'")
    train, test = data.get("train"), data.get("test")
    if not isinstance(train, list) or not train:
        raise DataError(f"{prefix} no demonstration pairs ('train' is missing or empty)")
    if not isinstance(test, list) or not test:
        raise DataError(f"{prefix} no test inputs ('test' is missing or empty)")
    pairs = []
    for n, pair in enumerate(train):
        if not isinstance(pair, dict):
            raise DataError(f"{prefix} train[{n}] is not an object with 'input' and 'output'")
        pairs.append(
            (_grid(pair.get("input"), f"{prefix} train[{n}].input"),
             _grid(pair.get("output"), f"{prefix} train[{n}].output"))
        )  # fmt: skip
    inputs, outputs = [], []
    for n, pair in enumerate(test):
        if not isinstance(pair, dict):
            raise DataError(f"{prefix} test[{n}] is not an object with 'input'")
        inputs.append(_grid(pair.get("input"), f"{prefix} test[{n}].input"))
        if solutions is None and "output" in pair:
            outputs.append(_grid(pair["output"], f"{prefix} test[{n}].output"))
    if solutions is not None:
        if not isinstance(solutions, list) or len(solutions) != len(inputs):
            got = len(solutions) if isinstance(solutions, list) else type(solutions).__name__
            raise DataError(f"{prefix} {len(inputs)} test input(s) but solutions has {got}")
        outputs = [_grid(s, f"{prefix} solution[{n}]") for n, s in enumerate(solutions)]
    known = outputs if len(outputs) == len(inputs) else None
    return Task(task_id, pairs, inputs, known)


def read_folder(folder: Path) -> dict[str, Task]:
    """Every `*.json` task file directly in `folder` (task id = file stem)."""
    files = sorted(folder.glob("*.json"))
    if not files:
        raise DataError(f"{folder}: no task JSON files (*.json) in this folder")
    return {f.stem: parse_task(f.stem, _read_json(f), str(f)) for f in files}


def solutions_beside(challenges: Path) -> Path | None:
    """`x_solutions.json` next to `x_challenges.json`, if present."""
    name = challenges.name.replace("_challenges.json", "_solutions.json")
    path = challenges.with_name(name)
    return path if name != challenges.name and path.is_file() else None


def read_challenges(challenges: Path, solutions: Path | None = None) -> dict[str, Task]:
    """A Kaggle challenges file, with test outputs from the solutions file when given/found."""
    data = _read_json(challenges)
    if not isinstance(data, dict):
        raise DataError(f"{challenges}: expected an object of task_id -> task")
    if not data:
        raise DataError(f"{challenges}: no tasks in the file")
    solutions = solutions or solutions_beside(challenges)
    answers = _read_json(solutions) if solutions is not None else None
    if answers is not None and not isinstance(answers, dict):
        raise DataError(f"{solutions}: expected an object of task_id -> list of grids")
    tasks = {}
    for task_id, task in data.items():
        if answers is not None and task_id not in answers:
            raise DataError(f"{solutions}: no solutions for task {task_id}")
        given = answers[task_id] if answers is not None else None
        tasks[task_id] = parse_task(task_id, task, str(challenges), given)
    return tasks


def read_tasks(path: Path) -> dict[str, Task]:
    """Tasks from a folder of task files or a Kaggle challenges file."""
    if path.is_dir():
        return read_folder(path)
    if path.is_file():
        return read_challenges(path)
    raise DataError(f"{path}: no such task folder or challenges file")
