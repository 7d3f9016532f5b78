"""Pick the accelerator from TOOLKIT_DEVICE (auto | cpu | cuda | cuda:N)."""

from __future__ import annotations

import torch

from toolkit.errors import ToolkitError


def resolve_device(requested: str) -> tuple[str, list[int] | int]:
    """Lightning's (accelerator, devices) for a device setting; CUDA asked for but absent is an
    error, `auto` falls back to the CPU."""
    value = requested.strip().lower()
    if value in ("auto", ""):
        return ("gpu", 1) if torch.cuda.is_available() else ("cpu", 1)
    if value == "cpu":
        return "cpu", 1
    if value in ("cuda", "gpu") or value.startswith(("cuda:", "gpu:")):
        if not torch.cuda.is_available():
            raise ToolkitError(
                f"TOOLKIT_DEVICE={requested} but no CUDA GPU is visible "
                "(in Docker, add `--gpus all`); use TOOLKIT_DEVICE=auto to fall back to the CPU"
            )
        index = value.partition(":")[2]
        return "gpu", [int(index)] if index else 1
    raise ToolkitError(f"TOOLKIT_DEVICE={requested!r}: use auto, cpu, cuda or cuda:N")


def torch_device(requested: str) -> torch.device:
    """The torch.device for a device setting (used outside Lightning: export, verify)."""
    accelerator, devices = resolve_device(requested)
    if accelerator == "cpu":
        return torch.device("cpu")
    return torch.device(f"cuda:{devices[0]}" if isinstance(devices, list) else "cuda")
