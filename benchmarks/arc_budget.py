"""ARC-AGI-1 evaluation score of a recipe trained for a fixed CPU budget, beside the trivial
baselines. Trains on ARC-AGI-1 training tasks (+ the evaluation tasks' demonstrations when the
recipe does test-time training), then predicts the 400 evaluation tasks with the bundle's own
predictor (ONNX, augmented views, two attempts) and scores them.

Usage: python benchmarks/arc_budget.py [--budget 1h] [--recipe arc/ttt-voting]
                                       [--data ../shared/data/arc-agi-1] [--set KEY=VALUE ...]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from typer.testing import CliRunner

from toolkit.cli.main import app
from toolkit.competitions.arc.evaluate import copy_input_submission
from toolkit.competitions.arc.score import score_files, score_submission
from toolkit.competitions.arc.tasks import read_folder
from toolkit.fileio import write_json

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--budget", default="1h", help="training time budget, e.g. 1h, 10min")
    parser.add_argument("--recipe", default="arc/ttt-voting")
    parser.add_argument("--data", type=Path, default=ROOT.parent / "shared/data/arc-agi-1")
    parser.add_argument("--set", dest="sets", action="append", default=[])
    parser.add_argument("--task-seconds", type=float, default=30.0, help="predict.py, per task")
    parser.add_argument("--views", type=int, default=None, help="predict.py views (recipe's)")
    parser.add_argument("--eval-tasks", type=int, default=None, help="score the first N only")
    parser.add_argument("--workdir", type=Path, default=None)
    args = parser.parse_args()
    data = args.data.resolve() / "data"
    evaluation = read_folder(data / "evaluation")
    evaluation = dict(list(evaluation.items())[: args.eval_tasks or len(evaluation)])
    work = args.workdir or Path(tempfile.mkdtemp(prefix="arc-budget-"))
    challenges, solutions = work / "eval_challenges.json", work / "eval_solutions.json"
    write_json(challenges, {t: task.challenge() for t, task in evaluation.items()})
    answers = {t: [g.tolist() for g in task.test_outputs] for t, task in evaluation.items()}
    write_json(solutions, answers)

    sets = [f"data.train_sources=[{data / 'training'}]", f"data.eval_source={data / 'evaluation'}",
            f"train.time_budget={args.budget}", "train.epochs=10000",
            # evaluation during training stays a small part of a CPU budget
            "data.evaluation.max_tasks=20", "data.evaluation.task_seconds=5",
            f"data.predict.task_seconds={args.task_seconds}",
            *([f"data.predict.views={args.views}"] if args.views else []), *args.sets]  # fmt: skip
    cmd = ["--runs-dir", str(work / "runs"), "--submissions-dir", str(work / "submissions"),
           "--cache-dir", str(work / "cache"), "--device", "cpu", "run", args.recipe]  # fmt: skip
    for item in sets:
        cmd += ["--set", item]
    started = time.monotonic()
    result = CliRunner().invoke(app, cmd, catch_exceptions=False)
    print(result.output)
    if result.exit_code != 0:
        raise SystemExit(result.exit_code)
    train_seconds = time.monotonic() - started
    bundle = next((work / "submissions" / "arc").iterdir())
    out = work / "submission.json"
    started = time.monotonic()
    result = CliRunner().invoke(app, ["predict", str(bundle), str(challenges), "--out", str(out)])
    predict_seconds = time.monotonic() - started
    print(next((ln for ln in result.output.splitlines() if ln.startswith("wrote")), ""))
    ours = score_files(out, solutions)
    copy = score_submission(copy_input_submission(evaluation), answers)
    print(f"\nARC-AGI-1 evaluation ({ours['tasks']} tasks, {ours['outputs']} test outputs), "
          f"recipe {args.recipe}, training budget {args.budget} on the CPU")  # fmt: skip
    print(f"{'':<22}{'per-task mean':>14}{'per-output':>12}{'solved':>8}")
    for name, r in (("copy input", copy), (args.recipe, ours)):
        print(f"{name:<22}{r['score']:>14.4f}{r['per_output']:>12.4f}{r['solved_tasks']:>8}")
    print(
        f"\ntrain+export+bundle+verify {train_seconds:.0f}s, predict {predict_seconds:.0f}s; "
        f"work folder {work}"
    )


if __name__ == "__main__":
    main()
