"""The ARC Prize score and a strict submission validator (one clear line per problem)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from toolkit.competitions.arc.standalone import grid_problem
from toolkit.errors import DataError, ToolkitError
from toolkit.fileio import read_json

ATTEMPTS = ("attempt_1", "attempt_2")


class SubmissionError(ToolkitError):
    """A submission.json the competition would reject."""


def check_submission(submission: Any, expected: dict[str, int], where: str = "submission") -> None:
    """Raise SubmissionError unless `submission` answers exactly the tasks of `expected`
    (task id -> number of test inputs): both attempts set, every attempt a valid grid."""
    if not isinstance(submission, dict):
        raise SubmissionError(f"{where}: expected an object of task_id -> list, "
                              f"got {type(submission).__name__}")  # fmt: skip
    missing = [t for t in expected if t not in submission]
    if missing:
        raise SubmissionError(f"{where}: {len(missing)} task id(s) missing (first: {missing[0]})")
    extra = [t for t in submission if t not in expected]
    if extra:
        raise SubmissionError(f"{where}: {len(extra)} unknown task id(s) (first: {extra[0]})")
    for task_id, n in expected.items():
        entries = submission[task_id]
        if not isinstance(entries, list) or len(entries) != n:
            got = len(entries) if isinstance(entries, list) else type(entries).__name__
            raise SubmissionError(
                f"{where}: task {task_id}: expected a list of {n} attempt object(s), got {got}"
            )
        for i, entry in enumerate(entries):
            if not isinstance(entry, dict) or set(entry) != set(ATTEMPTS):
                keys = sorted(entry) if isinstance(entry, dict) else type(entry).__name__
                raise SubmissionError(
                    f"{where}: task {task_id}[{i}]: expected exactly attempt_1 and attempt_2, "
                    f"got {keys}"
                )
            for key in ATTEMPTS:
                problem = grid_problem(entry[key])
                if problem is not None:
                    raise SubmissionError(f"{where}: task {task_id}[{i}].{key} {problem}")


def score_submission(
    submission: Any, solutions: dict[str, list[Any]], where: str = "submission"
) -> dict[str, Any]:
    """Validate strictly, then score: a test output counts if either attempt equals it.

    Headline: mean over tasks of (correct outputs / outputs of the task)."""
    check_submission(submission, {t: len(s) for t, s in solutions.items()}, where)
    per_task: dict[str, list[bool]] = {}
    for task_id, answers in solutions.items():
        per_task[task_id] = [
            any(entry[key] == answer for key in ATTEMPTS)
            for entry, answer in zip(submission[task_id], answers, strict=True)
        ]
    outputs = [ok for oks in per_task.values() for ok in oks]
    n_tasks = len(per_task)
    return {
        "score": sum(sum(o) / len(o) for o in per_task.values()) / n_tasks if n_tasks else 0.0,
        "per_output": sum(outputs) / len(outputs) if outputs else 0.0,
        "solved_tasks": sum(all(o) for o in per_task.values()),
        "tasks": n_tasks,
        "outputs": len(outputs),
        "correct": per_task,
    }


def _load(path: Path, what: str) -> Any:
    if not path.is_file():
        raise DataError(f"{path}: no such {what} file")
    try:
        return read_json(path)
    except ValueError as exc:
        raise DataError(f"{path}: the {what} file is not valid JSON ({exc})") from None


def score_files(submission: Path, solutions: Path) -> dict[str, Any]:
    """Score a submission.json against a Kaggle `*_solutions.json`."""
    answers = _load(solutions, "solutions")
    if (
        not isinstance(answers, dict)
        or not answers
        or not all(isinstance(v, list) and v for v in answers.values())
    ):
        raise DataError(f"{solutions}: expected a non-empty object of task_id -> list of grids")
    for task_id, grids in answers.items():
        for n, grid in enumerate(grids):
            problem = grid_problem(grid)
            if problem is not None:
                raise DataError(f"{solutions}: task {task_id} solution {n} {problem}")
    return score_submission(_load(submission, "submission"), answers, str(submission))
