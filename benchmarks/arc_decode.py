"""ARC greedy decoding cost per generated cell: the bundle's cached decoder.onnx vs re-running
model.onnx over the whole sequence for every cell (what predict.py does without decoder.onnx),
same weights, same prompts, onnxruntime on the CPU. Prints a table and the ratio.

Usage: python benchmarks/arc_decode.py [--width 256] [--layers 6] [--views 8] [--steps 24]
                                       [--task TASK.json]

The prompt is a real task's demonstrations and test input (ARC-AGI-1 layout; by default the
longest prompt among the tasks in tests/data/arc); the weights are random (the cost does not
depend on them), so cells are forced rather than decoded.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from rich.console import Console
from rich.table import Table

from toolkit.competitions.arc.model import ARCTransformer
from toolkit.competitions.arc.standalone import (
    MAX_OUTPUT_TOKENS,
    OnnxDecoder,
    fit_prompt,
    left_padded,
    onnx_forward,
)
from toolkit.competitions.arc.submission import export_decoder_onnx, export_dynamic_onnx

ROOT = Path(__file__).resolve().parent.parent


def task_prompt(path: Path, max_len: int) -> list[int]:
    """The prompt predict.py builds for the task's first test input (unaugmented view)."""
    task = json.loads(path.read_text())
    demos = [(np.array(p["input"]), np.array(p["output"])) for p in task["train"]]
    fitted = fit_prompt(demos, np.array(task["test"][0]["input"]), max_len)
    return fitted[0] if fitted else []


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--width", type=int, default=256)
    parser.add_argument("--layers", type=int, default=6)
    parser.add_argument("--views", type=int, default=8, help="rows decoded together")
    parser.add_argument("--steps", type=int, default=24, help="cells generated per method")
    parser.add_argument("--max-len", type=int, default=2048)
    parser.add_argument("--task", type=Path, default=None, help="a task JSON file")
    args = parser.parse_args()
    torch.manual_seed(0)
    model = ARCTransformer(width=args.width, layers=args.layers, max_len=args.max_len).eval()
    tasks = [args.task] if args.task else sorted((ROOT / "tests/data/arc").rglob("*.json"))
    name, prompt = max(((path.stem, task_prompt(path, args.max_len)) for path in tasks),
                       key=lambda item: len(item[1]))  # fmt: skip
    rows = np.array([prompt] * args.views, dtype=np.int64)
    cells = np.random.default_rng(0).integers(0, 10, size=(args.views, args.steps))

    with tempfile.TemporaryDirectory() as tmp:
        example = torch.from_numpy(rows[:2, :64].copy())
        forward = onnx_forward(export_dynamic_onnx(model, example, Path(tmp) / "m.onnx"), "cpu")
        decoder = OnnxDecoder(export_decoder_onnx(model, example, Path(tmp) / "d.onnx"), "cpu")

        started = time.perf_counter()
        seq = rows
        for step in range(args.steps):
            forward(seq)
            seq = np.concatenate([seq, cells[:, step : step + 1]], axis=1)
        full = (time.perf_counter() - started) / args.steps

        started = time.perf_counter()
        history = left_padded(list(rows))
        _, cache = decoder.start(history)
        prefill = time.perf_counter() - started
        started = time.perf_counter()
        for step in range(args.steps):
            history = np.concatenate([history, cells[:, step : step + 1]], axis=1)
            _, cache = decoder.step(history, cache)
        cached = (time.perf_counter() - started) / args.steps

    title = (f"ARC decoding, width {args.width}, {args.layers} layers, {args.views} views x "
             f"{len(prompt)}-token prompt ({name}), CPU")  # fmt: skip
    table = Table(title=title)
    for col in ("method", "ms per cell", "30x30 answer (931 cells)"):
        table.add_column(col, justify="right" if col != "method" else "left")
    table.add_row("model.onnx, whole sequence per cell", f"{full * 1e3:.1f}",
                  f"{full * MAX_OUTPUT_TOKENS:.0f} s")  # fmt: skip
    table.add_row(f"decoder.onnx, cached (+ {prefill:.2f} s prompt once)", f"{cached * 1e3:.1f}",
                  f"{prefill + cached * MAX_OUTPUT_TOKENS:.0f} s")  # fmt: skip
    console = Console()
    console.print(table)
    console.print(f"cached decoding is {full / cached:.1f}x faster per cell")


if __name__ == "__main__":
    main()
