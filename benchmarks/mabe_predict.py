"""predict.py on the CPU: frames per second, the time that implies for the hidden test set
(about 200 videos of about 25,000 frames; the notebook has 9 hours, we want 10x margin), and
the synthetic test score of a trained smoke bundle beside the two baselines.

Speed is measured with the FULL mabe/pair-tcn model (width 128, 7 dilated blocks + GRU,
256-frame windows at a 128 stride; random weights: speed does not depend on them) and, for
comparison, the smoke model, both through the bundle's own predict.py in a fresh process on a
synthetic test split (three labs: 2, 3 and 4 mice, 4-18 body parts, 25 and 30 fps).

    .venv/bin/python benchmarks/mabe_predict.py [--videos 3] [--frames 9000] [--threads 2]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import torch

from toolkit.competitions.mabe.evaluate import safe_score
from toolkit.competitions.mabe.model import TemporalNet
from toolkit.competitions.mabe.standalone import PAIR_FEATURES
from toolkit.competitions.mabe.submission import PREDICTOR, test_baseline
from toolkit.competitions.mabe.synth import LABEL_FPS, write_synthetic
from toolkit.export.models import to_onnx

ROOT = Path(__file__).resolve().parent.parent
HIDDEN_FRAMES = 200 * 25_000
BUDGET_S = 9 * 3600
OUTPUTS = ["chase", "mount", "rear", "sniff"]


def speed_bundle(folder: Path, kwargs: dict, window: int, stride: int) -> Path:
    """predict.py + an untrained model of the given size + model.json, like a real bundle."""
    folder.mkdir(parents=True)
    model = TemporalNet(PAIR_FEATURES, len(OUTPUTS), **kwargs).eval()
    to_onnx(model, torch.zeros(2, PAIR_FEATURES, window), folder / "model.onnx")
    shutil.copyfile(PREDICTOR, folder / "predict.py")
    spec = {"features": "pair", "fps": 30.0, "label_fps": LABEL_FPS, "window": window,
            "stride": stride, "outputs": OUTPUTS, "groups": None, "action_priority": OUTPUTS,
            "models": {"*": "model.onnx"}}  # fmt: skip
    (folder / "model.json").write_text(json.dumps(spec))
    return folder


def run_predict(bundle: Path, data: Path, out: Path, threads: int) -> float:
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    started = time.perf_counter()
    proc = subprocess.run([sys.executable, str(bundle / "predict.py"), str(data), str(out),
                           "--device", "cpu"], capture_output=True, text=True, env=env)  # fmt: skip
    if proc.returncode != 0:
        raise SystemExit(proc.stderr)
    return time.perf_counter() - started


def trained_smoke_bundle(tmp: Path) -> Path:
    """`toolkit run mabe/pair-tcn --smoke` in a scratch folder; its bundle folder."""
    env = {**os.environ, **{f"TOOLKIT_{k}_DIR": str(tmp / k.lower())
                            for k in ("DATA", "CACHE", "RUNS", "SUBMISSIONS")}}  # fmt: skip
    proc = subprocess.run([str(ROOT / ".venv" / "bin" / "toolkit"), "run", "mabe/pair-tcn",
                           "--smoke"], capture_output=True, text=True, env=env)  # fmt: skip
    if proc.returncode != 0:
        raise SystemExit(proc.stdout[-2000:] + proc.stderr[-2000:])
    line = next(ln for ln in proc.stdout.splitlines() if ln.startswith("bundle  "))
    return Path(line.split(None, 1)[1].strip()).parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=3, help="test videos (one per lab each)")
    parser.add_argument("--frames", type=int, default=9000, help="frames per video (30 fps)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--bundle", type=Path, help="a trained mabe bundle (default: train one)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        tmp = Path(scratch)
        data = write_synthetic(tmp / "data", videos=3, frames=args.frames, seed=5,
                               test_videos=args.videos, train=False)  # fmt: skip
        test = pd.read_csv(data / "test.csv")
        frames = int((test["video_duration_sec"] * 30).sum())
        streams = int(sum(len(json.loads(b)) for b in test["behaviors_labeled"]))
        print(f"synthetic test split: {len(test)} videos, {frames:,} frames at 30 fps, "
              f"{streams} whitelisted (agent, target, action) entries")  # fmt: skip
        print(f"\n{'model':<44}{'seconds':>9}{'frames/s':>10}{'hidden set':>12}"
              f"{'10x fits 9 h':>14}")  # fmt: skip
        sizes = {
            "pair-tcn full (128 wide, 7 blocks, GRU)": (
                {"width": 128, "layers": 7, "gru": True}, 256, 128),
            "pair-tcn smoke (32 wide, 4 blocks)": ({"width": 32, "layers": 4}, 64, 32),
        }  # fmt: skip
        for name, (kwargs, window, stride) in sizes.items():
            bundle = speed_bundle(tmp / re.sub(r"\W+", "-", name), kwargs, window, stride)
            seconds = run_predict(bundle, data, tmp / "speed.csv", args.threads)
            rate = frames / seconds
            hidden = HIDDEN_FRAMES / rate
            print(f"{name:<44}{seconds:>9.1f}{rate:>10,.0f}{hidden / 60:>10.1f} m"
                  f"{'yes' if hidden * 10 <= BUDGET_S else 'NO':>14}")  # fmt: skip

        bundle = args.bundle or trained_smoke_bundle(tmp / "smoke")
        content = tmp / "content"
        shutil.unpack_archive(bundle / "submission.zip", content)
        run_predict(content, data, tmp / "scored.csv", args.threads)
        solution = pd.read_csv(data / "solution.csv")
        ours = safe_score(solution, pd.read_csv(tmp / "scored.csv"))
        expected = json.loads((bundle / "reference" / "expected.json").read_text())
        print(f"\nsynthetic test score ({bundle.name}; the split above, then verify's split):")
        print(f"{'':<34}{'this split':>12}{'verify split':>14}")
        print(f"{'nothing predicted':<34}{0.0:>12.4f}{expected['baselines']['nothing']:>14.4f}")
        spec = json.loads((content / "model.json").read_text())
        frequent = test_baseline(data, spec, solution)
        print(f"{'most frequent whitelisted action':<34}{frequent:>12.4f}"
              f"{expected['baselines']['most_frequent']:>14.4f}")  # fmt: skip
        print(f"{'mabe/pair-tcn --smoke':<34}{ours['score']:>12.4f}{expected['score']:>14.4f}")
        for lab, value in ours["per_lab"].items():
            print(f"  {lab:<32}{value:>12.4f}")


if __name__ == "__main__":
    main()
