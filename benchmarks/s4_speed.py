"""S4 speed, in one run: training throughput (windows/s) of S4 and S4D vs EEGNeX; inference of
the exported S4 (eager vs TorchScript vs onnxruntime) at batch 1 and 64; and one S4 layer's
FFT path (training) vs its export path (real-arithmetic kernel + conv1d).

Usage: python benchmarks/s4_speed.py [--repeats N] [--threads T] [--d-model D] [--layers N]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import onnxruntime as ort
import torch
from rich.console import Console
from rich.table import Table
from timing import timed  # benchmarks/timing.py (the script folder is on sys.path)

from toolkit.competitions.eeg2025.models import HarnessModel, build_backbone
from toolkit.competitions.eeg2025.s4 import S4Layer
from toolkit.export.models import to_onnx, to_torchscript
from toolkit.logs import quiet_libraries


def model(name: str, args: argparse.Namespace) -> HarnessModel:
    torch.manual_seed(0)
    kwargs = {}
    if name != "EEGNeX":
        kwargs = {"d_model": args.d_model, "n_layers": args.layers, "d_state": args.d_state}
    return HarnessModel(build_backbone(name, kwargs, 200), 1.5, 0.4)


def training_rows(args: argparse.Namespace) -> list[tuple[str, str, str]]:
    x, y = torch.randn(64, 129, 200) * 1e-5, torch.rand(64, 1)
    rows, base = [], None
    for name in ("EEGNeX", "S4", "S4D"):
        net = model(name, args).train()
        opt = torch.optim.AdamW(net.parameters(), lr=1e-3)

        def step(net=net, opt=opt):
            loss = torch.nn.functional.mse_loss(net(x), y)
            opt.zero_grad()
            loss.backward()
            opt.step()

        rate = 64 / timed(step, args.repeats)
        base = base or rate
        params = sum(p.numel() for p in net.parameters())
        rows.append((name, f"{params:,}", f"{rate:,.0f} ({rate / base:.2f}x)"))
    return rows


def inference_rows(args: argparse.Namespace, tmp: Path) -> list[tuple[str, ...]]:
    net = model("S4", args).eval()
    example = torch.randn(4, 129, 200) * 1e-5
    ts = torch.jit.load(str(to_torchscript(net, example, tmp / "m.ts"))).eval()
    options = ort.SessionOptions()
    options.intra_op_num_threads = args.threads
    onnx = ort.InferenceSession(
        str(to_onnx(net, example, tmp / "m.onnx")), options, providers=["CPUExecutionProvider"]
    )
    rows = []
    for batch in (1, 64):
        x = torch.randn(batch, 129, 200) * 1e-5
        with torch.inference_mode():
            eager = timed(lambda x=x: net(x), args.repeats)
            script = timed(lambda x=x: ts(x), args.repeats)
        feed = {"input": x.numpy()}
        runtime = timed(lambda feed=feed: onnx.run(None, feed), args.repeats)
        times = [f"{1e3 * t:.2f}" for t in (eager, script, runtime)]
        rows.append((str(batch), *times, f"{script / eager:.2f}x", f"{runtime / eager:.2f}x"))
    return rows


def layer_rows(args: argparse.Namespace) -> list[tuple[str, ...]]:
    rows = []
    for kernel, init, disc in (("dplr", "legs", "bilinear"), ("diag", "lin", "zoh")):
        for bidirectional in (False, True):
            torch.manual_seed(0)
            layer = S4Layer(args.d_model, args.d_state, kernel, init, disc, bidirectional,
                            0.0, 1e-3, 1e-1).eval()  # fmt: skip
            u = torch.randn(64, args.d_model, 200)
            with torch.inference_mode():
                fft = timed(lambda layer=layer, u=u: layer(u), args.repeats)
                layer.export_path = True
                conv = timed(lambda layer=layer, u=u: layer(u), args.repeats)
                gap = float((layer(u) - _fft(layer, u)).abs().max())
            name = f"{'S4' if kernel == 'dplr' else 'S4D'}{' bidir' if bidirectional else ''}"
            times = (f"{1e3 * fft:.2f}", f"{1e3 * conv:.2f}", f"{conv / fft:.2f}x")
            rows.append((name, *times, f"{gap:.1e}"))
    return rows


def _fft(layer: S4Layer, u: torch.Tensor) -> torch.Tensor:
    layer.export_path = False
    return layer(u)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--d-model", type=int, default=64)
    parser.add_argument("--layers", type=int, default=4)
    parser.add_argument("--d-state", type=int, default=64)
    args = parser.parse_args()
    quiet_libraries()
    torch.set_num_threads(args.threads)
    console = Console()
    size = f"d_model {args.d_model}, {args.layers} layers, d_state {args.d_state}"
    table = Table(title=f"training step, batch 64, CPU {args.threads} threads ({size})")
    for col in ("model", "parameters", "windows/s (vs EEGNeX)"):
        table.add_column(col, justify="right")
    for row in training_rows(args):
        table.add_row(*row)
    console.print(table)
    with tempfile.TemporaryDirectory() as tmp:
        table = Table(title="exported S4 (export path inside), inference ms, median")
        for col in ("batch", "eager", "TorchScript", "onnxruntime", "ts / eager", "ort / eager"):
            table.add_column(col, justify="right")
        for row in inference_rows(args, Path(tmp)):
            table.add_row(*row)
        console.print(table)
    table = Table(title=f"one S4 layer, batch 64 x {args.d_model} x 200, forward ms")
    for col in ("layer", "FFT path", "export path", "export / FFT", "max |diff|"):
        table.add_column(col, justify="right")
    for row in layer_rows(args):
        table.add_row(*row)
    console.print(table)


if __name__ == "__main__":
    main()
