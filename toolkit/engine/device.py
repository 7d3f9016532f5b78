"""Pick the accelerator from TOOLKIT_DEVICE (auto | cpu | cuda | cuda:N)."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import torch

from toolkit.errors import ToolkitError

log = logging.getLogger(__name__)

HOW_TO_FIX = "run with --gpus all or set TOOLKIT_DEVICE=auto to fall back to the CPU"


def cuda_absence_reason() -> str:
    """Why torch sees no CUDA device, in a few words (for one-line messages)."""
    if torch.version.cuda is None:
        return f"this torch build has no CUDA support (torch {torch.__version__})"
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None and visible.strip() in ("", "-1", "none", "void"):
        return f"CUDA_VISIBLE_DEVICES={visible!r} hides every GPU"
    if not Path("/dev/nvidiactl").exists() and not any(Path("/dev").glob("nvidia[0-9]*")):
        where = "in this container" if in_container() else "on this machine"
        return f"no NVIDIA device or driver {where}"
    return f"torch finds no usable GPU; is the driver too old for CUDA {torch.version.cuda}?"


def in_container() -> bool:
    """True inside Docker/Podman (best effort: the marker files their runtimes create)."""
    return Path("/.dockerenv").exists() or Path("/run/.containerenv").exists()


def resolve_device(
    requested: str, source: str = "TOOLKIT_DEVICE"
) -> tuple[str, list[int] | int]:
    """Lightning's (accelerator, devices) for a device setting; CUDA asked for but absent is an
    error, `auto` falls back to the CPU with a one-line notice. `source` names where the value
    came from in messages (the TOOLKIT_DEVICE setting, or the --device flag)."""
    value = requested.strip().lower()
    if value in ("auto", ""):
        if torch.cuda.is_available():
            return "gpu", 1
        log.warning("no CUDA device visible (%s): running on the CPU", cuda_absence_reason())
        return "cpu", 1
    if value == "cpu":
        return "cpu", 1
    if value in ("cuda", "gpu") or value.startswith(("cuda:", "gpu:")):
        index = value.partition(":")[2]
        if index and not index.isdigit():
            raise ToolkitError(f"{source}={requested!r}: use auto, cpu, cuda or cuda:N")
        if not torch.cuda.is_available():
            raise ToolkitError(
                f"{source}={requested} but no CUDA device is visible "
                f"({cuda_absence_reason()}); {HOW_TO_FIX}"
            )
        if index and int(index) >= torch.cuda.device_count():
            raise ToolkitError(
                f"{source}={requested} but only {torch.cuda.device_count()} CUDA "
                f"device(s) are visible (cuda:0..cuda:{torch.cuda.device_count() - 1})"
            )
        return "gpu", [int(index)] if index else 1
    raise ToolkitError(f"{source}={requested!r}: use auto, cpu, cuda or cuda:N")


def torch_device(requested: str) -> torch.device:
    """The torch.device for a device setting (used outside Lightning: export, verify)."""
    accelerator, devices = resolve_device(requested)
    if accelerator == "cpu":
        return torch.device("cpu")
    return torch.device(f"cuda:{devices[0]}" if isinstance(devices, list) else "cuda")
