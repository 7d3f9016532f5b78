"""C1 model latency: onnxruntime (what an ONNX bundle runs) vs eager torch vs TorchScript (what
the eeg2025 bundle runs), at batch 1 and 64, on the CPU. Prints a table and the ratios.

Usage: python benchmarks/eeg2025_inference.py [--repeats N] [--threads T]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch
from rich.console import Console
from rich.table import Table
from timing import timed  # benchmarks/timing.py (the script folder is on sys.path)

from toolkit.competitions.eeg2025.models import HarnessModel, build_backbone
from toolkit.export.models import to_onnx, to_torchscript
from toolkit.logs import quiet_libraries


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = parser.parse_args()
    quiet_libraries()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = HarnessModel(build_backbone("EEGNeX", {}, 200), 1.5, 0.4).eval()
    example = torch.randn(4, 129, 200) * 1e-5
    with tempfile.TemporaryDirectory() as tmp:
        onnx_path = to_onnx(model, example, Path(tmp) / "model.onnx")
        ts_path = to_torchscript(model, example, Path(tmp) / "model.ts")
        options = ort.SessionOptions()
        options.intra_op_num_threads = args.threads
        session = ort.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
        scripted = torch.jit.load(str(ts_path)).eval()
        table = Table(title=f"EEG 2025 C1 model (EEGNeX), CPU, {args.threads} threads, median")
        for col in ("batch", "eager torch ms", "TorchScript ms", "onnxruntime ms", "ort / eager"):
            table.add_column(col, justify="right")
        for batch in (1, 64):
            x = (torch.randn(batch, 129, 200) * 1e-5).float()
            xn = x.numpy()
            with torch.inference_mode():
                eager = timed(lambda x=x: model(x), args.repeats)
                ts = timed(lambda x=x: scripted(x), args.repeats)
            ort_s = timed(lambda xn=xn: session.run(None, {"input": xn}), args.repeats)
            with torch.inference_mode():
                assert np.allclose(session.run(None, {"input": xn})[0], model(x).numpy(), atol=1e-4)
            table.add_row(
                str(batch), f"{eager * 1e3:.2f}", f"{ts * 1e3:.2f}", f"{ort_s * 1e3:.2f}",
                f"{ort_s / eager:.2f}x",
            )  # fmt: skip
    Console().print(table)
    print("ort / eager below 1.00x means onnxruntime is faster than eager PyTorch.")


if __name__ == "__main__":
    main()
