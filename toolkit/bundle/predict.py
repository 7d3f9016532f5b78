"""`toolkit predict`: a bundle's own predictor script, run the way the competition runs it
(the verify sandbox: offline, without the toolkit, within a time limit)."""

from __future__ import annotations

import sys
from pathlib import Path

from toolkit.bundle.sandbox import Sandbox
from toolkit.errors import ToolkitError


def run_predict_script(
    content: Path,
    inputs: Path,
    out: Path,
    device: str,
    sandbox: Sandbox,
    script: str = "predict.py",
) -> str:
    """`python SCRIPT INPUTS OUT --device DEVICE` in `sandbox`; its stderr (warnings about
    skipped items) is passed through; returns its last stdout line (the summary)."""
    path = content / script
    if not path.is_file():
        raise ToolkitError(f"{content}: no {script} in this bundle")
    result = sandbox.run(path, [str(inputs), str(out), "--device", device])
    sys.stderr.write(result.stderr)
    if result.network:
        raise ToolkitError(f"{script} tried the network: {'; '.join(result.network)}")
    if result.returncode != 0:
        raise ToolkitError(f"{script}: {result.last_error.removeprefix('error: ')}")
    lines = [line for line in result.stdout.splitlines() if line.strip()]
    return lines[-1] if lines else ""
