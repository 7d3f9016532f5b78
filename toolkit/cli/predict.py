"""`toolkit predict BUNDLE INPUT --out OUT`: run a bundle's own offline predictor."""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Annotated

import typer

from toolkit.cli.common import cli_errors, console


def predict_cmd(
    bundle: Annotated[Path, typer.Argument(help="A bundle folder or its submission.zip.")],
    inputs: Annotated[Path, typer.Argument(help="The competition's input, e.g. challenges.json.")],
    out: Annotated[Path, typer.Option("--out", help="Where to write the predictions.")] = Path(
        "submission.json"
    ),
    device: Annotated[str, typer.Option(help="auto, cpu or cuda.")] = "auto",
    timeout: Annotated[
        float,
        typer.Option("--timeout", min=1, help="Seconds the predictor may run before it is killed."),
    ] = 9 * 3600.0,
) -> None:
    """Predict with a bundle exactly as the competition will run it (its own script, offline,
    without the toolkit)."""
    from toolkit.bundle.archive import extract_zip
    from toolkit.bundle.sandbox import Sandbox, sweep_stale
    from toolkit.bundle.verify import UPLOAD
    from toolkit.competitions import get_competition
    from toolkit.engine.interrupts import signals_raise
    from toolkit.errors import ToolkitError
    from toolkit.fileio import read_json

    with cli_errors(), signals_raise():
        upload = bundle.expanduser().resolve()
        upload = upload / UPLOAD if upload.is_dir() else upload
        if not upload.is_file():
            raise ToolkitError(f"{bundle}: no bundle folder with {UPLOAD}, and no zip")
        target = out.expanduser().resolve()
        folder = next((p for p in (target.parent, *target.parent.parents) if p.exists()), None)
        if folder is None or not folder.is_dir() or not os.access(folder, os.W_OK | os.X_OK):
            raise ToolkitError(
                f"--out {out}: cannot write into {folder or target.parent} (read-only or not "
                "yours); choose a writable folder"
            )
        sweep_stale("toolkit-predict-")
        with tempfile.TemporaryDirectory(prefix=f"toolkit-predict-{os.getpid()}-") as tmp:
            content = Path(tmp)
            extract_zip(upload, content)
            manifest = content / "manifest.json"
            name = read_json(manifest).get("competition", "") if manifest.is_file() else ""
            competition = get_competition(name, where=str(upload))
            predict = getattr(competition, "predict", None)
            if predict is None:
                raise ToolkitError(f"{competition.name} bundles have no offline predictor")
            sandbox = Sandbox(blocked=("toolkit", *competition.unavailable_modules),
                              timeout=timeout)  # fmt: skip
            target.parent.mkdir(parents=True, exist_ok=True)
            summary = predict(content, inputs.expanduser().resolve(), target, device, sandbox)
        console.print(summary or f"wrote {out}")
