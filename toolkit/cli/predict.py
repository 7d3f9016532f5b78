"""`toolkit predict BUNDLE INPUT --out OUT`: run a bundle's own offline predictor."""

from __future__ import annotations

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
) -> None:
    """Predict with a bundle exactly as the competition will run it (its own script, offline)."""
    from toolkit.bundle.archive import extract_zip
    from toolkit.bundle.verify import UPLOAD
    from toolkit.competitions import get_competition
    from toolkit.errors import ToolkitError
    from toolkit.fileio import read_json

    with cli_errors():
        upload = bundle.expanduser().resolve()
        upload = upload / UPLOAD if upload.is_dir() else upload
        if not upload.is_file():
            raise ToolkitError(f"{bundle}: no bundle folder with {UPLOAD}, and no zip")
        with tempfile.TemporaryDirectory(prefix="toolkit-predict-") as tmp:
            content = Path(tmp)
            extract_zip(upload, content)
            manifest = content / "manifest.json"
            name = read_json(manifest).get("competition", "") if manifest.is_file() else ""
            competition = get_competition(name, where=str(upload))
            predict = getattr(competition, "predict", None)
            if predict is None:
                raise ToolkitError(f"{competition.name} bundles have no offline predictor")
            summary = predict(content, inputs.resolve(), out.resolve(), device)
        console.print(summary or f"wrote {out}")
