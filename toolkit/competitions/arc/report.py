"""arc's figures for `toolkit report`: evaluation tasks as coloured grids, one row per test
input: the input, the answer and the model's two attempts (marked right or wrong), from the
best evaluation the run made (eval_predictions.best.json)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from matplotlib.colors import ListedColormap

from toolkit.config.settings import get_settings
from toolkit.engine.rundir import RunDir
from toolkit.fileio import read_json
from toolkit.report.figures import figure

# The ARC colours, 0-9 (black, blue, red, green, yellow, grey, magenta, orange, azure, maroon).
COLOURS = ListedColormap(["#000000", "#0074D9", "#FF4136", "#2ECC40", "#FFDC00", "#AAAAAA",
                          "#F012BE", "#FF851B", "#7FDBFF", "#870C25"])  # fmt: skip
MAX_ROWS = 12


def _predictions(run: RunDir) -> dict[str, Any] | None:
    best = run.path / "eval_predictions.best.json"
    for path in (best, run.eval_predictions):
        if path.is_file():
            return read_json(path)
    return None


def _draw(ax, grid: Any, title: str, colour: str = "#222222") -> None:
    cells = np.asarray(grid, dtype=int)
    if cells.ndim != 2 or cells.size == 0:
        cells = np.zeros((1, 1), dtype=int)
    ax.imshow(np.clip(cells, 0, 9), cmap=COLOURS, vmin=0, vmax=9, interpolation="nearest")
    ax.set_xticks(np.arange(-0.5, cells.shape[1], 1), minor=True)
    ax.set_yticks(np.arange(-0.5, cells.shape[0], 1), minor=True)
    ax.grid(which="minor", color="#555555", lw=0.5)
    ax.tick_params(which="both", length=0, labelbottom=False, labelleft=False)
    ax.set_title(title, fontsize=8, color=colour)


def report_figures(run: RunDir, out: Path) -> list[tuple[str, Path]]:
    """One PNG of up to MAX_ROWS evaluation test inputs; none when the run never evaluated."""
    from toolkit.competitions.arc.datamodule import resolve_source
    from toolkit.competitions.arc.tasks import read_tasks

    record = _predictions(run)
    if record is None:
        return []
    recipe = run.recipe()
    data = recipe.data
    source = resolve_source(data.eval_source, get_settings(), "evaluation",
                            data.synthetic.model_dump())  # fmt: skip
    tasks = read_tasks(source)
    rows = [
        (task_id, i, tasks[task_id], attempts, entry.get("correct", []))
        for task_id, entry in record["predictions"].items() if task_id in tasks
        for i, attempts in enumerate(entry.get("attempts", []))
    ][:MAX_ROWS]  # fmt: skip
    if not rows:
        return []
    path = out / f"{recipe.slug}-{run.path.name}-arc-grids.png"
    with figure(path, width=8, height=2.1 * len(rows)) as fig:
        axes = fig.subplots(len(rows), 4, squeeze=False)
        for row, (task_id, i, task, attempts, _) in zip(axes, rows, strict=True):
            answer = task.test_outputs[i] if task.test_outputs else [[0]]
            _draw(row[0], task.test_inputs[i], f"{task_id} test {i}: input")
            _draw(row[1], answer, "answer")
            for k, attempt in enumerate(attempts[:2]):
                hit = np.array_equal(np.asarray(attempt), np.asarray(answer))
                mark, colour = ("right", "#2a8a2a") if hit else ("wrong", "#c0392b")
                _draw(row[2 + k], attempt, f"attempt {k + 1}: {mark}", colour)
    solved = sum(bool(correct[i]) for _, i, _, _, correct in rows if i < len(correct))
    caption = (f"evaluation tasks at epoch {record.get('epoch')} (score "
               f"{record.get('score', 0.0):.3f}): input, answer and the two attempts; "
               f"{solved} of the {len(rows)} test inputs shown solved")  # fmt: skip
    return [(caption, path)]
