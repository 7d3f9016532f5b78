"""Export a trained model to TorchScript and ONNX, each checked against the eager model."""

from __future__ import annotations

import contextlib
import io
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from toolkit.errors import ExportError
from toolkit.export.deterministic import fresh_jit_names, scrub_onnx, scrub_torchscript


def load_weights(model: nn.Module, checkpoint: Path, prefix: str = "model.") -> nn.Module:
    """Load a Lightning checkpoint's weights (safely: weights_only) into a fresh model."""
    if not checkpoint.is_file():
        raise ExportError(f"{checkpoint}: no checkpoint (did training finish?)")
    try:
        state = torch.load(checkpoint, map_location="cpu", weights_only=True)["state_dict"]
    except Exception as exc:
        raise ExportError(f"{checkpoint}: unreadable checkpoint ({exc})") from None
    weights = {k.removeprefix(prefix): v for k, v in state.items() if k.startswith(prefix)}
    model.load_state_dict(weights)
    return model.eval()


@contextlib.contextmanager
def _quiet():
    """Exporters print progress and tracer warnings; keep the CLI's output readable."""
    with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
        warnings.simplefilter("ignore")
        yield


def to_torchscript(model: nn.Module, example: torch.Tensor, path: Path) -> Path:
    """Trace to TorchScript (loads with torch.jit.load, no model code needed)."""
    try:
        fresh_jit_names()  # class names as in a fresh process, whatever was traced before
        with _quiet(), torch.no_grad():
            traced = torch.jit.trace(model, example, check_trace=False)
        traced.save(str(path))
        scrub_torchscript(path)  # no call stacks or absolute paths in the file
    except Exception as exc:
        raise ExportError(f"TorchScript export failed: {type(exc).__name__}: {exc}") from None
    return path


def to_onnx(model: nn.Module, example: torch.Tensor, path: Path) -> Path:
    """Export to ONNX with the dynamo exporter, batch dimension dynamic."""
    try:
        with _quiet():
            program = torch.onnx.export(
                model,
                (example,),
                dynamo=True,
                input_names=["input"],
                output_names=["output"],
                dynamic_shapes=({0: torch.export.Dim("batch")},),
            )
            program.save(str(path))
        scrub_onnx(path)
    except Exception as exc:
        raise ExportError(f"ONNX export failed: {type(exc).__name__}: {exc}") from None
    return path


def run_torchscript(path: Path, x: np.ndarray) -> np.ndarray:
    module = torch.jit.load(str(path), map_location="cpu").eval()
    with torch.inference_mode():
        return module(torch.from_numpy(x)).numpy()


def run_onnx(path: Path, x: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return session.run(None, {session.get_inputs()[0].name: x})[0]


def run_state_dict(path: Path, x: np.ndarray) -> np.ndarray:
    from toolkit.export.state_dict import run_state_dict as run

    return run(path, x)


RUNNERS = {"torchscript": run_torchscript, "onnx": run_onnx, "state_dict": run_state_dict}
FILES = {"torchscript": "model.ts", "onnx": "model.onnx", "state_dict": "model.pth"}


def parity(
    fmt: str, path: Path, x: np.ndarray, expected: np.ndarray, atol: float, rtol: float
) -> dict[str, Any]:
    """Compare an exported file with eager outputs, batched and one input at a time."""
    batched = RUNNERS[fmt](path, x)
    single = np.concatenate([RUNNERS[fmt](path, x[i : i + 1]) for i in range(len(x))])
    errors = {
        "batch": float(np.max(np.abs(batched - expected))),
        "batch_1": float(np.max(np.abs(single - expected))),
    }
    ok = all(
        np.allclose(out, expected, atol=atol, rtol=rtol) and out.shape == expected.shape
        for out in (batched, single)
    )
    return {"file": path.name, "ok": ok, "max_abs_error": errors, "atol": atol, "rtol": rtol}


def numpy_forward(model: nn.Module):
    """The eager model as a numpy function (array in, float32 array out, no gradients, on the
    model's device): what a bundle's standalone code calls its onnxruntime session through, so
    training-time evaluation can run that same code on the eager model."""
    device = next(model.parameters()).device

    def forward(x: np.ndarray) -> np.ndarray:
        with torch.inference_mode():
            batch = torch.from_numpy(np.ascontiguousarray(x)).to(device)
            return model(batch).float().cpu().numpy()

    return forward

