"""`toolkit report RUN_OR_BUNDLE`: an HTML page with PNG figures of a run or a bundle."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from toolkit.cli.common import cli_errors, console


def report_cmd(
    target: Annotated[Path, typer.Argument(help="A run folder, or a bundle folder or its zip.")],
    out: Annotated[
        Path | None, typer.Option(help="Folder for index.html and the PNGs (default: report/).")
    ] = None,
) -> None:
    """Draw a run (learning curves, final metrics beside baselines, the competition's own
    figures) or every run of a bundle, as index.html + PNG files."""
    from toolkit.report.page import write_report

    with cli_errors():
        page = write_report(target, out)
        figures = sorted(p.name for p in page.parent.glob("*.png"))
        console.print(f"report [bold]{page}[/] ({len(figures)} figures)")
