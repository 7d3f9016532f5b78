"""Is r3d_18 starved on this machine? Data-loader clips/s (augmented training clips from the
array cache, through a DataLoader) vs r3d_18 forward+backward clips/s, and ONNX (onnxruntime)
vs eager r3d_18 inference at batch 1 and 8, all in one run at one input size.

    .venv/bin/python benchmarks/crosssucking_model.py [--frames 16] [--crop 112] [--repeats 2]
    .venv/bin/python benchmarks/crosssucking_model.py --frames 8 --crop 32   # the smoke size
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from toolkit.competitions.crosssucking.config import CrossSuckingData
from toolkit.competitions.crosssucking.datamodule import CrossSuckingDataModule
from toolkit.competitions.crosssucking.model import R3D18Classifier
from toolkit.config.settings import Settings
from toolkit.export.models import to_onnx


def timed(fn, repeats: int) -> float:
    """Seconds per call, after one warm-up call."""
    fn()
    started = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - started) / repeats


def loader_rate(frames: int, crop: int, batch: int, workers: int, tmp: Path) -> float:
    clip = {"frames": frames, "short_side": round(crop * 8 / 7), "crop": crop}
    synthetic = {"videos": 4, "test_videos": 1, "height": 144, "width": 192}
    cfg = CrossSuckingData(clip=clip, synthetic=synthetic, split={"kind": "intravideo"})
    settings = Settings(cache_dir=tmp / "cache", data_dir=tmp, num_workers=workers)
    dm = CrossSuckingDataModule(cfg, batch, settings, seed=0)
    dm.setup("fit")
    loader = dm.train_dataloader()
    started, clips = time.perf_counter(), 0
    for _ in range(3):
        for x, _y in loader:
            clips += len(x)
    return clips / (time.perf_counter() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=16)
    parser.add_argument("--crop", type=int, default=112)
    parser.add_argument("--batch", type=int, default=4, help="training batch")
    parser.add_argument("--repeats", type=int, default=2)
    args = parser.parse_args()
    shape = (3, args.frames, args.crop, args.crop)
    model = R3D18Classifier(dropout=0.5)
    opt = torch.optim.AdamW(model.parameters(), lr=5e-5, weight_decay=0.05)
    x = torch.rand(args.batch, *shape)
    y = torch.randint(0, 2, (args.batch,))

    def step() -> None:
        loss = torch.nn.functional.cross_entropy(model(x), y)
        loss.backward()
        opt.step()
        opt.zero_grad()

    model.train()
    train_rate = args.batch / timed(step, args.repeats)
    with tempfile.TemporaryDirectory() as tmp:
        loaders = {w: loader_rate(args.frames, args.crop, args.batch, w, Path(tmp)) for w in (0, 2)}
        model.eval()
        onnx = to_onnx(model, torch.rand(2, *shape), Path(tmp) / "model.onnx")
        import onnxruntime as ort

        session = ort.InferenceSession(str(onnx), providers=["CPUExecutionProvider"])
        rows = []
        for batch in (1, 8):
            xb = np.random.default_rng(0).random((batch, *shape), dtype=np.float32)
            with torch.inference_mode():
                eager = timed(lambda xb=xb: model(torch.from_numpy(xb)), args.repeats)
            runtime = timed(lambda xb=xb: session.run(None, {"input": xb}), args.repeats)
            rows.append((batch, eager, runtime))

    print(f"r3d_18, input (B, {', '.join(map(str, shape))}), {torch.get_num_threads()} threads")
    print("| what | clips/s |\n|---|---:|")
    for workers, rate in loaders.items():
        print(f"| data loader, augmented clips from the cache, {workers} workers | {rate:.1f} |")
    print(f"| r3d_18 forward+backward+AdamW, batch {args.batch} | {train_rate:.2f} |")
    print(
        "\n| inference | eager s/batch | onnxruntime s/batch | onnx / eager |\n|---|---:|---:|---:|"
    )
    for batch, eager, runtime in rows:
        print(f"| batch {batch} | {eager:.3f} | {runtime:.3f} | {runtime / eager:.2f} |")


if __name__ == "__main__":
    main()
