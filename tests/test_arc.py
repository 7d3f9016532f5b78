"""ARC: reading and validating tasks, tokens, augmentation round trips, the score, and the
predictor's guarantees (every task answered, failures padded with a warning)."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from tests.conftest import DATA
from toolkit.competitions.arc.evaluate import TorchDecoder
from toolkit.competitions.arc.model import ARCTransformer, grid_positions
from toolkit.competitions.arc.score import SubmissionError, check_submission, score_submission
from toolkit.competitions.arc.standalone import (
    END,
    IN,
    NL,
    OUT,
    PAD,
    VOCAB,
    View,
    colour_permutation,
    dihedral,
    fit_prompt,
    greedy_decode,
    grid_tokens,
    left_padded,
    parse_output,
    predict_all,
    prompt_tokens,
    undo_dihedral,
    views,
)
from toolkit.competitions.arc.tasks import read_challenges, read_folder, read_tasks
from toolkit.errors import DataError
from toolkit.export.models import numpy_forward

ARC = DATA / "arc"


def kaggle_files(folder: Path, tmp: Path, prefix: str = "x") -> tuple[Path, Path]:
    """Kaggle-style challenges + solutions built from a folder of task files."""
    challenges, solutions = {}, {}
    for path in sorted(folder.glob("*.json")):
        task = json.loads(path.read_text())
        challenges[path.stem] = {
            "train": task["train"], "test": [{"input": p["input"]} for p in task["test"]]
        }  # fmt: skip
        solutions[path.stem] = [p["output"] for p in task["test"]]
    c, s = tmp / f"{prefix}_challenges.json", tmp / f"{prefix}_solutions.json"
    c.write_text(json.dumps(challenges))
    s.write_text(json.dumps(solutions))
    return c, s


# ------------------------------------------------------------------ reading real tasks


def test_reads_the_real_task_folder():
    tasks = read_folder(ARC / "training")
    assert len(tasks) == 7
    task = tasks["27a28665"]
    assert len(task.test_inputs) == 3 and task.test_outputs is not None
    assert len(task.pairs) == len(task.train) + 3
    assert task.train[0][0].dtype == np.int64


def test_kaggle_files_read_the_same_tasks_with_solutions_found_beside(tmp_path: Path):
    challenges, _ = kaggle_files(ARC / "training", tmp_path)
    from_kaggle = read_challenges(challenges)
    from_folder = read_tasks(ARC / "training")
    assert set(from_kaggle) == set(from_folder)
    for task_id, task in from_folder.items():
        other = from_kaggle[task_id]
        assert all(
            (a == b).all() for a, b in zip(task.test_outputs, other.test_outputs, strict=True)
        )
        assert task.challenge() == other.challenge()


def test_challenges_without_solutions_have_no_outputs(tmp_path: Path):
    challenges, solutions = kaggle_files(ARC / "evaluation", tmp_path)
    solutions.unlink()
    assert all(t.test_outputs is None for t in read_challenges(challenges).values())


BAD_TASKS = {
    "malformed JSON": ('{"train": [', "malformed JSON at line 1"),
    "ragged rows": (
        {"train": [{"input": [[1, 2], [3]], "output": [[1]]}], "test": [{"input": [[1]]}]},
        "task bad: train[0].input has ragged rows (row 1 has 1 cells, row 0 has 2)",
    ),
    "value outside 0-9": (
        {"train": [{"input": [[1]], "output": [[10]]}], "test": [{"input": [[1]]}]},
        "task bad: train[0].output has value 10 at row 0, column 0",
    ),
    "grid over 30x30": (
        {"train": [{"input": [[0] * 31] * 2, "output": [[1]]}], "test": [{"input": [[1]]}]},
        "task bad: train[0].input row 0 has 31 cells (at most 30)",
    ),
    "no test inputs": (
        {"train": [{"input": [[1]], "output": [[1]]}], "test": []},
        "task bad: no test inputs",
    ),
}


@pytest.mark.parametrize("case", list(BAD_TASKS))
def test_bad_task_file_is_one_clear_line_naming_the_task(toolkit, tmp_path: Path, case: str):
    content, expected = BAD_TASKS[case]
    folder = tmp_path / "tasks"
    folder.mkdir()
    good = json.loads((ARC / "training" / "6150a2bd.json").read_text())
    (folder / "good.json").write_text(json.dumps(good))
    (folder / "bad.json").write_text(content if isinstance(content, str) else json.dumps(content))
    result = toolkit("train", "arc/seed-7h", "--smoke", "--set", f"data.train_sources=[{folder}]")
    assert result.exit_code == 2, result.output
    assert expected in result.output
    assert "bad.json" in result.output
    assert "Traceback" not in result.output
    assert len([ln for ln in result.output.splitlines() if ln.startswith("error:")]) == 1


def test_empty_folder_and_challenges_without_any_test_input(toolkit, tmp_path: Path):
    empty = tmp_path / "empty"
    empty.mkdir()
    result = toolkit("train", "arc/seed-7h", "--smoke", "--set", f"data.eval_source={empty}")
    assert result.exit_code == 2
    assert "no task JSON files (*.json) in this folder" in result.output
    challenges = tmp_path / "y_challenges.json"
    challenges.write_text(json.dumps({"abc": {"train": [{"input": [[1]], "output": [[1]]}]}}))
    with pytest.raises(DataError, match=r"y_challenges.json: task abc: no test inputs"):
        read_challenges(challenges)


# ------------------------------------------------------------------ tokens and augmentation


def test_grid_tokens_round_trip_and_reject_non_grids():
    grid = np.arange(12).reshape(3, 4) % 10
    assert parse_output([*grid_tokens(grid), END]).tolist() == grid.tolist()
    assert parse_output([1, 2, NL, 3, NL, END]) is None  # ragged
    assert parse_output([1, 2, NL]) is None  # no END
    assert parse_output([*([1, NL] * 31), END]) is None  # 31 rows


@pytest.mark.parametrize("k", range(8))
def test_each_dihedral_transform_is_inverted(k: int):
    grid = np.arange(6).reshape(2, 3)
    assert (undo_dihedral(dihedral(grid, k), k) == grid).all()


def test_the_eight_transforms_are_distinct_and_views_round_trip():
    grid = np.arange(6).reshape(2, 3)
    assert (
        len({dihedral(grid, k).tobytes() + bytes(dihedral(grid, k).shape) for k in range(8)}) == 8
    )
    for view in views(16, seed=3):
        assert (view.undo(view.apply(grid)) == grid).all()


def test_colour_permutations_keep_background():
    rng = np.random.default_rng(0)
    for _ in range(20):
        perm = colour_permutation(rng)
        assert perm[0] == 0 and sorted(perm.tolist()) == list(range(10))
    view = View(0, colour_permutation(rng))
    assert (view.apply(np.zeros((3, 3), dtype=np.int64)) == 0).all()


def test_fit_prompt_drops_the_longest_demos_first():
    small = (np.ones((2, 2), dtype=np.int64), np.ones((2, 2), dtype=np.int64))
    big = (np.ones((9, 9), dtype=np.int64), np.ones((9, 9), dtype=np.int64))
    query = np.ones((2, 2), dtype=np.int64)
    tokens, budget = fit_prompt([big, small], query, max_len=60)
    assert tokens == prompt_tokens([small], query)
    assert budget == 60 - len(tokens)
    assert fit_prompt([big], query, max_len=60) is None


def test_model_positions_follow_rows_and_columns():
    grid = np.arange(6).reshape(2, 3)
    tokens = torch.tensor([prompt_tokens([(grid, grid)], grid)])
    row, col, _ = grid_positions(tokens)
    first = tokens[0].tolist().index(OUT) + 1  # the first output grid's first cell
    assert col[0, first : first + 3].tolist() == [1, 2, 3]
    assert row[0, first + 4 : first + 7].tolist() == [1, 1, 1]
    logits = ARCTransformer(width=16, layers=1, heads=2, max_len=64)(tokens)
    assert logits.shape == (1, tokens.shape[1], VOCAB)


def test_cached_decoding_matches_the_full_model_over_padded_rows():
    """decode (left padding, key/value cache, rows leaving the batch) == forward's last logits."""
    torch.manual_seed(0)
    model = ARCTransformer(width=32, layers=2, heads=4, max_len=128).eval()
    forward, decoder = numpy_forward(model), TorchDecoder(model)
    grid = np.arange(6).reshape(2, 3)
    seqs = [prompt_tokens([(grid, grid)] * n, grid[:1]) for n in (1, 3, 2)]
    history = left_padded(seqs)
    logits, cache = decoder.start(history)
    for step in range(5):
        for row, seq in enumerate(seqs):
            expected = forward(np.array([seq]))[0, -1]
            np.testing.assert_allclose(logits[row], expected, atol=1e-5, err_msg=f"step {step}")
        nxt = logits[:, :PAD].argmax(-1).astype(np.int64)
        if step == 2:  # the middle row leaves the batch
            keep = np.array([0, 2])
            seqs, nxt = [seqs[0], seqs[2]], nxt[keep]
            history, cache = history[keep], decoder.select(cache, keep)
        seqs = [[*seq, int(t)] for seq, t in zip(seqs, nxt, strict=True)]
        history = np.concatenate([history, nxt[:, None]], axis=1)
        logits, cache = decoder.step(history, cache)


def grid_of_demo_count(tokens: np.ndarray) -> np.ndarray:
    """A fake model whose answer depends on the prompt: one row of n 1s for n demos."""
    logits = np.zeros((*tokens.shape, VOCAB), dtype=np.float32)
    for b, row in enumerate(tokens):
        run = 0
        for t, token in enumerate(row):
            run = run + 1 if token == 1 else 0
            demos = int(np.sum(row[: t + 1] == IN)) - 1
            if token == OUT or (token == 1 and run < demos):
                nxt = 1
            elif token == 1:
                nxt = NL
            else:
                nxt = END
            logits[b, t, nxt] = 10.0
    return logits


class RecomputingDecoder:
    """The Decoder contract over a plain Forward; its "cache" is only the batch size, checked."""

    def __init__(self, forward):
        self.forward = forward

    def start(self, history: np.ndarray):
        return self.step(history, len(history))

    def step(self, history: np.ndarray, cache: int):
        assert cache == len(history), "the cache and the history lost step"
        assert (history[:, 0] == PAD).all()
        rows = [h[h != PAD] for h in history]
        return np.stack([self.forward(r[None])[0, -1] for r in rows]), len(history)

    def select(self, cache: int, rows: np.ndarray) -> int:
        return len(rows)


def test_cached_decode_loop_writes_what_the_full_loop_writes():
    grid = np.ones((1, 1), dtype=int)
    prompts = [prompt_tokens([(grid, grid)] * n, grid) for n in (3, 1, 4, 2)]
    budgets = [20, 20, 3, 20]  # the third row runs out of budget before its END
    full = greedy_decode(grid_of_demo_count, prompts, budgets, float("inf"))
    cached = greedy_decode(grid_of_demo_count, prompts, budgets, float("inf"),
                           RecomputingDecoder(grid_of_demo_count))  # fmt: skip
    assert cached == full
    assert [parse_output(r[0]).tolist() if r else None for r in full] == [
        [[1, 1, 1]], [[1]], None, [[1, 1]]
    ]


# ------------------------------------------------------------------ score and validation


def test_score_is_the_mean_over_tasks_of_correct_outputs():
    a, b, wrong = [[1, 2]], [[3]], [[0]]
    solutions = {"t1": [a, b], "t2": [a]}
    submission = {
        "t1": [{"attempt_1": wrong, "attempt_2": a}, {"attempt_1": wrong, "attempt_2": wrong}],
        "t2": [{"attempt_1": a, "attempt_2": wrong}],
    }
    report = score_submission(submission, solutions)
    assert report["score"] == pytest.approx(0.75)  # (1/2 + 1) / 2
    assert report["per_output"] == pytest.approx(2 / 3)
    assert report["solved_tasks"] == 1
    assert report["correct"] == {"t1": [True, False], "t2": [True]}


@pytest.mark.parametrize(
    ("submission", "message"),
    [
        ([], "expected an object of task_id -> list"),
        ({}, "1 task id(s) missing (first: t1)"),
        ({"t1": [{"attempt_1": [[1]], "attempt_2": [[1]]}], "zz": []}, "1 unknown task id"),
        ({"t1": []}, "task t1: expected a list of 1 attempt object(s), got 0"),
        ({"t1": [{"attempt_1": [[1]]}]}, "task t1[0]: expected exactly attempt_1 and attempt_2"),
        ({"t1": [{"attempt_1": [[1], [1, 2]], "attempt_2": [[1]]}]}, "t1[0].attempt_1 has ragged"),
        ({"t1": [{"attempt_1": [[1]], "attempt_2": [[-1]]}]}, "t1[0].attempt_2 has value -1"),
    ],
)
def test_strict_validator_names_the_problem(submission, message: str):
    with pytest.raises(SubmissionError) as err:
        check_submission(submission, {"t1": 1})
    assert message in str(err.value) and "\n" not in str(err.value)


def test_score_command_reports_and_rejects_malformed_files(toolkit, tmp_path: Path):
    _, solutions = kaggle_files(ARC / "evaluation", tmp_path)
    answers = json.loads(solutions.read_text())
    good = {
        t: [{"attempt_1": g, "attempt_2": [[0]]} for g in grids] for t, grids in answers.items()
    }
    good["66e6c45b"][0]["attempt_1"] = [[0]]  # one of two tasks wrong
    path = tmp_path / "submission.json"
    path.write_text(json.dumps(good))
    result = toolkit("score", "arc", str(path), str(solutions))
    assert result.exit_code == 0, result.output
    assert "score 0.5000" in result.output
    assert "solved_tasks  1" in result.output
    path.write_text(json.dumps({"66e6c45b": []}))
    result = toolkit("score", "arc", str(path), str(solutions))
    assert result.exit_code != 0
    assert "task id(s) missing (first: 6ea4a07e)" in result.output
    path.write_text("{not json")
    assert "not valid JSON" in toolkit("score", "arc", str(path), str(solutions)).output


# ------------------------------------------------------------------ the predictor


def one_forward(tokens: np.ndarray) -> np.ndarray:
    """A fake model that always writes the grid [[1]]: after OUT a 1, after a 1 NL, then END."""
    logits = np.zeros((*tokens.shape, VOCAB), dtype=np.float32)
    nxt = np.select([tokens == OUT, tokens == 1, tokens == NL], [1, NL, END], END)
    np.put_along_axis(logits, nxt[..., None], 10.0, axis=-1)
    return logits


def test_predictor_answers_every_test_input_and_pads_failures():
    challenges = json.loads((ARC / "training" / "27a28665.json").read_text())
    tasks = {"multi": challenges, "broken": {"train": [{"input": [[1, 2], [3]]}], "test": [{}]}}
    warnings: list[str] = []
    submission, failures = predict_all(
        one_forward, tasks, max_len=512, n_views=8, rank="votes", warn=warnings.append
    )
    assert [e["attempt_1"] for e in submission["multi"]] == [[[1]]] * 3
    assert all(e["attempt_2"] == [[0]] for e in submission["multi"])
    assert submission["broken"] == [{"attempt_1": [[0]], "attempt_2": [[0]]}]
    assert list(failures) == ["broken"] and "ragged rows" in failures["broken"]
    assert len(warnings) == 1 and warnings[0].startswith("task broken:")


def test_predictor_keeps_the_other_tasks_when_the_model_fails_on_one():
    def flaky(tokens: np.ndarray) -> np.ndarray:
        if tokens.shape[1] > 60:
            raise RuntimeError("out of memory")
        return one_forward(tokens)

    small = {"train": [{"input": [[1]], "output": [[2]]}], "test": [{"input": [[3]]}]}
    large = {"train": [{"input": [[1] * 9] * 9, "output": [[2]]}], "test": [{"input": [[3]]}]}
    warnings: list[str] = []
    submission, _ = predict_all(flaky, {"a": small, "b": large, "c": small}, max_len=512,
                                n_views=2, rank="logprob", warn=warnings.append)  # fmt: skip
    assert submission["a"][0]["attempt_1"] == [[1]] == submission["c"][0]["attempt_1"]
    assert submission["b"] == [{"attempt_1": [[0]], "attempt_2": [[0]]}]
    assert ["out of memory" in w for w in warnings] == [True]


def test_predictor_honours_the_per_task_time_limit():
    def slow(tokens: np.ndarray) -> np.ndarray:
        time.sleep(0.2)
        return one_forward(tokens)

    task = {"train": [{"input": [[1]], "output": [[2]]}], "test": [{"input": [[3]]}]}
    started = time.monotonic()
    submission, failures = predict_all(slow, {"a": task, "b": task}, task_seconds=0.3,
                                       max_len=64, n_views=1, rank="votes", warn=print)  # fmt: skip
    assert time.monotonic() - started < 2.0
    assert set(failures) == {"a", "b"} and "time limit" in failures["a"]
    check_submission(submission, {"a": 1, "b": 1})
