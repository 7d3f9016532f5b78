#!/usr/bin/env python3
"""ARC Prize predictor: CHALLENGES.json -> submission.json with numpy and onnxruntime only.

    python predict.py CHALLENGES.json OUT/submission.json [--views 8] [--task-seconds 170]

Beside model.onnx (whole sequences -> logits, for scoring candidates) the bundle holds
decoder.onnx, the same weights with a key/value cache, so that each decoded cell costs one
position's work rather than a pass over the whole prompt; without it decoding re-runs
model.onnx per cell (slower, same tokens).

Every task id gets one {"attempt_1", "attempt_2"} per test input. Each test input is decoded
greedily under several augmented views (dihedral transforms, colour permutations keeping 0),
the candidates are mapped back, ranked by summed log-probabilities across views (or by votes),
and the top two kept; missing attempts are padded with [[0]]. A task that fails or runs out of
time gets padded attempts and a warning on stderr; the file is always written, atomically.

The toolkit imports this same file for training-time evaluation, so the token layout, the
augmentations and the decoding are one implementation (the bundle's copy is `predict.py`).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any, Protocol

import numpy as np

# Tokens: colours 0-9, then row end, input/output grid markers, end of pair, padding.
NL, IN, OUT, END, PAD = 10, 11, 12, 13, 14
VOCAB = 15
MAX_SIDE = 30
PAD_GRID: list[list[int]] = [[0]]
MAX_OUTPUT_TOKENS = MAX_SIDE * (MAX_SIDE + 1) + 1  # a 30x30 grid with row ends, then END

Grid = list[list[int]]
# A model: token ids (B, T) int64 -> logits (B, T, VOCAB) float32, causal.
Forward = Callable[[np.ndarray], np.ndarray]
Warn = Callable[[str], None]


class Decoder(Protocol):
    """Cached decoding: histories (B, T) int64, left-padded with PAD -> next-token logits
    (B, VOCAB) and the key/value cache of all T positions. `start` takes T-1 histories with
    a PAD first column; `step` takes the cache of the first T-1 positions."""

    def start(self, history: np.ndarray) -> tuple[np.ndarray, Any]: ...

    def step(self, history: np.ndarray, cache: Any) -> tuple[np.ndarray, Any]: ...

    def select(self, cache: Any, rows: np.ndarray) -> Any: ...


# --------------------------------------------------------------------------- grids and tokens


def grid_problem(grid: Any) -> str | None:
    """Why `grid` is not an ARC grid (1-30 rows of 1-30 equal-length rows of ints 0-9)."""
    if not isinstance(grid, list) or not grid:
        return "is not a non-empty list of rows"
    if len(grid) > MAX_SIDE:
        return f"has {len(grid)} rows (at most {MAX_SIDE})"
    width = None
    for r, row in enumerate(grid):
        if not isinstance(row, list) or not row:
            return f"row {r} is not a non-empty list of cells"
        if len(row) > MAX_SIDE:
            return f"row {r} has {len(row)} cells (at most {MAX_SIDE})"
        if width is None:
            width = len(row)
        elif len(row) != width:
            return f"has ragged rows (row {r} has {len(row)} cells, row 0 has {width})"
        for c, value in enumerate(row):
            if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 9:
                return f"has value {value!r} at row {r}, column {c} (cells are integers 0-9)"
    return None


def grid_tokens(grid: np.ndarray) -> list[int]:
    """Cells row by row, each row followed by NL."""
    h, w = grid.shape
    out = np.full((h, w + 1), NL, dtype=np.int64)
    out[:, :w] = grid
    return out.ravel().tolist()


def pair_tokens(inp: np.ndarray, out: np.ndarray) -> list[int]:
    return [IN, *grid_tokens(inp), OUT, *grid_tokens(out), END]


def prompt_tokens(demos: list[tuple[np.ndarray, np.ndarray]], query: np.ndarray) -> list[int]:
    """Demonstration pairs, then the query input and the output marker."""
    tokens: list[int] = []
    for inp, out in demos:
        tokens += pair_tokens(inp, out)
    return [*tokens, IN, *grid_tokens(query), OUT]


def output_tokens(grid: np.ndarray) -> list[int]:
    """What the model should write after OUT."""
    return [*grid_tokens(grid), END]


def parse_output(tokens: Iterable[int]) -> np.ndarray | None:
    """The grid written by `tokens` (after OUT, up to END), or None if it is not a grid."""
    rows: list[list[int]] = []
    row: list[int] = []
    for token in tokens:
        if token == END:
            break
        if token == NL:
            if not row or (rows and len(row) != len(rows[0])):
                return None
            rows.append(row)
            row = []
        elif 0 <= token <= 9:
            row.append(int(token))
        else:
            return None
    else:
        return None
    if row or not rows or len(rows) > MAX_SIDE or len(rows[0]) > MAX_SIDE:
        return None
    return np.array(rows, dtype=np.int64)


# --------------------------------------------------------------------------- augmentation


def dihedral(grid: np.ndarray, k: int) -> np.ndarray:
    """One of the 8 symmetries of the square: rotate k%4 quarter turns, then mirror if k>=4."""
    out = np.rot90(grid, k % 4)
    return np.ascontiguousarray(np.fliplr(out) if k >= 4 else out)


def undo_dihedral(grid: np.ndarray, k: int) -> np.ndarray:
    """The inverse of `dihedral(., k)`."""
    out = np.fliplr(grid) if k >= 4 else grid
    return np.ascontiguousarray(np.rot90(out, -(k % 4)))


def colour_permutation(rng: np.random.Generator) -> np.ndarray:
    """A random permutation of colours 1-9; 0 (the background) stays 0."""
    return np.concatenate([[0], rng.permutation(np.arange(1, 10))]).astype(np.int64)


IDENTITY_COLOURS = np.arange(10, dtype=np.int64)


class View:
    """An augmented view of a task: a dihedral transform and a colour permutation."""

    def __init__(self, k: int = 0, colours: np.ndarray = IDENTITY_COLOURS):
        self.k = k
        self.colours = colours
        self.inverse = np.argsort(colours)

    def apply(self, grid: np.ndarray) -> np.ndarray:
        return dihedral(self.colours[grid], self.k)

    def undo(self, grid: np.ndarray) -> np.ndarray:
        return self.inverse[undo_dihedral(grid, self.k)]


def views(n: int, seed: int = 0) -> list[View]:
    """`n` views: the identity first, then the other dihedral transforms, then the same with
    random colour permutations (deterministic for a seed)."""
    rng = np.random.default_rng(seed)
    out = []
    for i in range(max(n, 1)):
        colours = IDENTITY_COLOURS if i < 8 else colour_permutation(rng)
        out.append(View(i % 8, colours))
    return out


# --------------------------------------------------------------------------- decoding


def log_softmax(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.float64)
    x = x - x.max(axis=-1, keepdims=True)
    return x - np.log(np.exp(x).sum(axis=-1, keepdims=True))


def fit_prompt(
    demos: list[tuple[np.ndarray, np.ndarray]], query: np.ndarray, max_len: int
) -> tuple[list[int], int] | None:
    """The prompt with as many demos as fit (dropping the longest first), leaving room for an
    answer as large as the largest kept demo output or the query; (tokens, budget) or None."""
    sizes = [len(pair_tokens(*d)) for d in demos]
    outs = [len(grid_tokens(o)) + 1 for _, o in demos]
    tail = len(grid_tokens(query)) + 2
    kept = list(range(len(demos)))

    def needed() -> int:
        reserve = max([outs[i] for i in kept] + [tail - 1])
        return sum(sizes[i] for i in kept) + tail + min(reserve, MAX_OUTPUT_TOKENS)

    while kept and needed() > max_len:
        kept.remove(max(kept, key=lambda i: (sizes[i], i)))
    if not kept:
        return None
    tokens = prompt_tokens([demos[i] for i in kept], query)
    return tokens, min(MAX_OUTPUT_TOKENS, max_len - len(tokens))


def greedy_decode(
    forward: Forward,
    prompts: list[list[int]],
    budgets: list[int],
    deadline: float,
    decoder: Decoder | None = None,
) -> list[tuple[list[int], float] | None]:
    """Greedy continuations of every prompt, batched: (tokens up to END, log-probability), or
    None where the output is not a grid, exceeds its budget, or time ran out. With a cached
    `decoder` each step computes one position per row; else `forward` re-reads everything."""
    rows = _Continuations(budgets)
    if decoder is not None:
        _decode_cached(decoder, prompts, rows, deadline)
    else:
        _decode_full(forward, prompts, budgets, rows, deadline)
    return rows.results


class _Continuations:
    """What each row has written so far, its log-probability, and its result when finished."""

    def __init__(self, budgets: list[int]) -> None:
        self.budgets = budgets
        self.shapes = [_Shape() for _ in budgets]
        self.written: list[list[int]] = [[] for _ in budgets]
        self.logp = np.zeros(len(budgets))
        self.results: list[tuple[list[int], float] | None] = [None] * len(budgets)

    def take(self, i: int, logprobs: np.ndarray) -> int | None:
        """Row i's greedy token, or None when that token finished the row."""
        token = int(logprobs.argmax())
        self.logp[i] += logprobs[token]
        self.written[i].append(token)
        state = self.shapes[i].add(token)
        if state == "more" and len(self.written[i]) < self.budgets[i]:
            return token
        if state == "done":
            self.results[i] = (self.written[i], float(self.logp[i]))
        return None


def _decode_full(
    forward: Forward, prompts: list[list[int]], budgets: list[int], rows: _Continuations,
    deadline: float,
) -> None:  # fmt: skip
    """Right-padded buffers; every step runs the model over every row's whole sequence."""
    n = len(prompts)
    lens = np.array([len(p) for p in prompts])
    buf = np.full((n, int(max(lens + np.array(budgets)))), PAD, dtype=np.int64)
    for i, p in enumerate(prompts):
        buf[i, : len(p)] = p
    active = np.ones(n, dtype=bool)
    while active.any() and time.monotonic() < deadline:
        live = np.flatnonzero(active)
        logits = forward(buf[live, : int(lens[live].max())])
        last = log_softmax(logits[np.arange(len(live)), lens[live] - 1])
        for j, i in enumerate(live):
            token = rows.take(i, last[j])
            if token is None:
                active[i] = False
            else:
                buf[i, lens[i]] = token
                lens[i] += 1


def left_padded(seqs: list[list[int]] | list[np.ndarray]) -> np.ndarray:
    """Token sequences as one (B, 1 + longest) int64 array, right-aligned behind PAD: the
    history a Decoder starts from (its first column is always PAD)."""
    width = max(map(len, seqs)) + 1
    history = np.full((len(seqs), width), PAD, dtype=np.int64)
    for i, seq in enumerate(seqs):
        history[i, width - len(seq) :] = seq
    return history


def _decode_cached(
    decoder: Decoder, prompts: list[list[int]], rows: _Continuations, deadline: float
) -> None:
    """Left-padded histories behind a PAD column; every step computes one position per row,
    and finished rows leave the batch (and the cache)."""
    history = left_padded(prompts)
    if time.monotonic() >= deadline:
        return
    live = np.arange(len(prompts))
    logits, cache = decoder.start(history)
    while time.monotonic() < deadline:
        last = log_softmax(logits)
        tokens = [rows.take(i, last[j]) for j, i in enumerate(live)]
        keep = np.array([j for j, t in enumerate(tokens) if t is not None], dtype=np.int64)
        if not len(keep):
            return
        column = np.array([PAD if t is None else t for t in tokens], dtype=np.int64)
        history = np.concatenate([history, column[:, None]], axis=1)
        if len(keep) < len(live):
            history, live, cache = history[keep], live[keep], decoder.select(cache, keep)
        logits, cache = decoder.step(history, cache)


class _Shape:
    """Tracks the grid being written token by token: 'more', 'done' (a grid) or 'bad'."""

    def __init__(self) -> None:
        self.row = 0
        self.width = 0
        self.rows = 0

    def add(self, token: int) -> str:
        if 0 <= token <= 9:
            self.row += 1
            limit = self.width or MAX_SIDE
            return "more" if self.row <= limit else "bad"
        if token == NL:
            if self.row == 0 or (self.width and self.row != self.width):
                return "bad"
            self.width, self.row, self.rows = self.row, 0, self.rows + 1
            return "more" if self.rows <= MAX_SIDE else "bad"
        if token == END:
            return "done" if self.rows and self.row == 0 else "bad"
        return "bad"


def sequence_logprobs(
    forward: Forward, prompts: list[list[int]], answers: list[list[int]], batch: int = 16
) -> np.ndarray:
    """log p(answer | prompt) for each pair, teacher-forced."""
    out = np.zeros(len(prompts))
    for start in range(0, len(prompts), batch):
        chunk = range(start, min(start + batch, len(prompts)))
        seqs = [prompts[i] + answers[i] for i in chunk]
        buf = np.full((len(seqs), max(map(len, seqs)) - 1), PAD, dtype=np.int64)
        for j, s in enumerate(seqs):
            buf[j, : len(s) - 1] = s[:-1]
        logits = forward(buf)
        for j, i in enumerate(chunk):
            lp = log_softmax(logits[j, len(prompts[i]) - 1 : len(seqs[j]) - 1])
            out[i] = lp[np.arange(len(answers[i])), answers[i]].sum()
    return out


# --------------------------------------------------------------------------- prediction


def predict_test_input(
    forward: Forward,
    demos: list[tuple[np.ndarray, np.ndarray]],
    query: np.ndarray,
    *,
    max_len: int,
    n_views: int,
    rank: str,
    deadline: float,
    seed: int = 0,
    decoder: Decoder | None = None,
) -> list[np.ndarray]:
    """Up to two candidate grids for one test input, best first."""
    prompts, budgets, used = [], [], []
    for view in views(n_views, seed):
        fitted = fit_prompt([(view.apply(i), view.apply(o)) for i, o in demos],
                            view.apply(query), max_len)  # fmt: skip
        if fitted is not None:
            prompts.append(fitted[0])
            budgets.append(fitted[1])
            used.append(view)
    if not prompts:
        return []
    decoded = greedy_decode(forward, prompts, budgets, deadline, decoder)
    found: dict[bytes, dict[str, Any]] = {}
    for view, result in zip(used, decoded, strict=True):
        grid = parse_output(result[0]) if result is not None else None
        if grid is None:
            continue
        grid = view.undo(grid)
        key = np.array(grid.shape).tobytes() + grid.tobytes()
        entry = found.setdefault(key, {"grid": grid, "votes": 0, "logp": 0.0})
        entry["votes"] += 1
        entry["logp"] += result[1]
    candidates = list(found.values())
    if rank == "logprob" and len(candidates) > 1 and time.monotonic() < deadline:
        pairs = [(c, i) for c in range(len(candidates)) for i in range(len(used))]
        answers = [output_tokens(used[i].apply(candidates[c]["grid"])) for c, i in pairs]
        keep = [k for k, (_, i) in enumerate(pairs) if len(answers[k]) <= budgets[i]]
        scores = sequence_logprobs(
            forward, [prompts[pairs[k][1]] for k in keep], [answers[k] for k in keep]
        )
        totals = np.zeros(len(candidates))
        counts = np.zeros(len(candidates))
        for k, s in zip(keep, scores, strict=True):
            totals[pairs[k][0]] += s
            counts[pairs[k][0]] += 1
        for c, entry in enumerate(candidates):
            entry["score"] = totals[c] / max(counts[c], 1)
        candidates.sort(key=lambda e: -e["score"])
    else:
        candidates.sort(key=lambda e: (-e["votes"], -e["logp"]))
    return [c["grid"] for c in candidates[:2]]


def task_problem(task: Any) -> str | None:
    """Why `task` is not a challenge: {"train": [{input, output}...], "test": [{input}...]}."""
    if not isinstance(task, dict):
        return "is not an object with 'train' and 'test'"
    for part in ("train", "test"):
        pairs = task.get(part)
        if not isinstance(pairs, list) or not pairs:
            return f"has no {part} pairs" if part == "train" else "has no test inputs"
        for n, pair in enumerate(pairs):
            if not isinstance(pair, dict):
                return f"{part}[{n}] is not an object"
            for key in ("input", "output") if part == "train" else ("input",):
                problem = grid_problem(pair.get(key))
                if problem is not None:
                    return f"{part}[{n}].{key} {problem}"
    return None


def padded(n: int) -> list[dict[str, Grid]]:
    return [{"attempt_1": PAD_GRID, "attempt_2": PAD_GRID} for _ in range(n)]


def predict_task(
    forward: Forward, task: dict[str, Any], *, deadline: float, **options: Any
) -> list[dict[str, Grid]]:
    """Both attempts for every test input of one task (raises on a malformed task)."""
    problem = task_problem(task)
    if problem is not None:
        raise ValueError(problem)
    demos = [(np.array(p["input"]), np.array(p["output"])) for p in task["train"]]
    entries = []
    for pair in task["test"]:
        found = predict_test_input(
            forward, demos, np.array(pair["input"]), deadline=deadline, **options
        )
        grids = [g.tolist() for g in found] + [PAD_GRID, PAD_GRID]
        entries.append({"attempt_1": grids[0], "attempt_2": grids[1]})
    return entries


def predict_all(
    forward: Forward | None,
    challenges: dict[str, Any],
    *,
    task_seconds: float = 170.0,
    total_seconds: float | None = None,
    warn: Warn | None = None,
    **options: Any,
) -> tuple[dict[str, list[dict[str, Grid]]], dict[str, str]]:
    """(submission, {task id: why it was padded}); never raises for one task's failure."""
    warn = warn or (lambda message: print(f"warning: {message}", file=sys.stderr))
    start = time.monotonic()
    end = start + total_seconds if total_seconds is not None else float("inf")
    submission: dict[str, list[dict[str, Grid]]] = {}
    failures: dict[str, str] = {}
    for task_id, task in challenges.items():
        tests = task.get("test") if isinstance(task, dict) else None
        n_tests = len(tests) if isinstance(tests, list) else 1
        now = time.monotonic()
        try:
            if forward is None:
                raise RuntimeError("no model loaded")
            if now >= end:
                raise TimeoutError("the total time limit was reached before this task")
            deadline = min(now + task_seconds, end)
            submission[task_id] = predict_task(forward, task, deadline=deadline, **options)
            if time.monotonic() >= deadline:
                failures[task_id] = f"stopped at the time limit ({task_seconds:g}s)"
                warn(f"task {task_id}: {failures[task_id]}; kept what was decoded by then")
        except Exception as exc:
            failures[task_id] = f"{type(exc).__name__}: {exc}"
            warn(f"task {task_id}: {failures[task_id]}; writing [[0]] attempts")
            submission[task_id] = padded(n_tests)
    return submission, failures


# --------------------------------------------------------------------------- files and model


def load_challenges(path: Path) -> dict[str, Any]:
    """A Kaggle challenges file; raises ValueError with one clear line for what is wrong."""
    try:
        data = json.loads(Path(path).read_text())
    except OSError as exc:
        raise ValueError(f"{path}: cannot read ({exc.strerror or exc})") from None
    except json.JSONDecodeError as exc:
        where = f"line {exc.lineno}, column {exc.colno}"
        raise ValueError(f"{path}: not valid JSON ({where}: {exc.msg})") from None
    if not isinstance(data, dict):
        kind = type(data).__name__
        raise ValueError(f"{path}: expected an object of task_id -> task, got {kind}")
    if not data:
        raise ValueError(f"{path}: no tasks in the file")
    if not any(isinstance(t, dict) and t.get("test") for t in data.values()):
        raise ValueError(f"{path}: no task has test inputs")
    return data


def write_json_atomic(path: Path, data: Any) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    mask = os.umask(0o022)  # mkstemp makes 0600; give what open() would have given
    os.umask(mask)
    os.chmod(tmp, 0o666 & ~mask)
    try:
        with os.fdopen(fd, "w") as fh:
            json.dump(data, fh, separators=(",", ":"))
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def _session(path: Path, device: str):
    """An onnxruntime session on CUDA when asked for or available, else the CPU."""
    import onnxruntime as ort

    wanted = ["CPUExecutionProvider"]
    if device != "cpu" and "CUDAExecutionProvider" in ort.get_available_providers():
        wanted.insert(0, "CUDAExecutionProvider")
    return ort.InferenceSession(str(path), providers=wanted)


def onnx_forward(path: Path, device: str = "auto") -> Forward:
    """model.onnx (tokens -> logits of every position) as a Forward."""
    session = _session(path, device)
    name = session.get_inputs()[0].name

    def forward(tokens: np.ndarray) -> np.ndarray:
        return session.run(None, {name: tokens.astype(np.int64)})[0]

    return forward


class OnnxDecoder:
    """decoder.onnx (history, past_k, past_v -> logits, keys, values) as a Decoder."""

    def __init__(self, path: Path, device: str = "auto"):
        self.session = _session(path, device)
        shape = self.session.get_inputs()[1].shape  # (layers, batch, heads, past, head width)
        self.layers, self.heads, self.head_width = shape[0], shape[2], shape[4]

    def start(self, history: np.ndarray) -> tuple[np.ndarray, Any]:
        zeros = np.zeros(
            (self.layers, len(history), self.heads, 1, self.head_width), dtype=np.float32
        )
        return self.step(history, (zeros, zeros))

    def step(self, history: np.ndarray, cache: Any) -> tuple[np.ndarray, Any]:
        inputs = {"history": history.astype(np.int64), "past_k": cache[0], "past_v": cache[1]}
        logits, keys, values = self.session.run(None, inputs)
        return logits, (keys, values)

    def select(self, cache: Any, rows: np.ndarray) -> Any:
        return cache[0][:, rows], cache[1][:, rows]


def main(argv: list[str] | None = None) -> int:
    here = Path(__file__).resolve().parent
    config = here / "model.json"
    settings = json.loads(config.read_text()) if config.is_file() else {}
    parser = argparse.ArgumentParser(description="ARC predictor: challenges -> submission.json")
    parser.add_argument("challenges", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--model", type=Path, default=here / "model.onnx")
    parser.add_argument("--decoder", type=Path, default=here / "decoder.onnx",
                        help="cached decoder (skipped when the file is absent)")  # fmt: skip
    parser.add_argument("--views", type=int, default=settings.get("views", 8))
    parser.add_argument(
        "--rank", choices=("logprob", "votes"), default=settings.get("rank", "logprob")
    )
    parser.add_argument("--task-seconds", type=float, default=settings.get("task_seconds", 170.0))
    parser.add_argument("--total-seconds", type=float, default=None)
    parser.add_argument("--max-len", type=int, default=settings.get("max_len", 2048))
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto")
    args = parser.parse_args(argv)
    try:
        challenges = load_challenges(args.challenges)
    except ValueError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    forward = decoder = None
    try:
        forward = onnx_forward(args.model, args.device)
    except Exception as exc:
        print(f"error: cannot load the model {args.model}: {exc}", file=sys.stderr)
    if forward is not None and args.decoder.is_file():
        try:
            decoder = OnnxDecoder(args.decoder, args.device)
        except Exception as exc:  # slower, same answers: decode with model.onnx alone
            print(f"warning: cannot load {args.decoder} ({exc}); decoding without the cache",
                  file=sys.stderr)  # fmt: skip
    submission, failures = predict_all(
        forward,
        challenges,
        task_seconds=args.task_seconds,
        total_seconds=args.total_seconds,
        max_len=args.max_len,
        n_views=args.views,
        rank=args.rank,
        decoder=decoder,
    )
    write_json_atomic(args.out, submission)
    n_tests = sum(len(t["test"]) for t in challenges.values()
                  if isinstance(t, dict) and isinstance(t.get("test"), list))  # fmt: skip
    print(f"wrote {args.out}: {len(submission)} tasks, {n_tests} test inputs, "
          f"{len(failures)} task(s) padded or cut short")  # fmt: skip
    return 1 if forward is None else 0


if __name__ == "__main__":
    sys.exit(main())
