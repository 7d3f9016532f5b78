"""`toolkit data synth`: synthetic data in a competition's real on-disk layout."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from toolkit.cli.common import cli_errors, console
from toolkit.competitions import get_competition

app = typer.Typer(help="Data helpers.", no_args_is_help=True)


@app.command("synth")
def synth_cmd(
    competition: Annotated[str, typer.Argument(help="Competition name, e.g. eeg2025.")],
    directory: Annotated[Path, typer.Argument(help="Folder to write (becomes the data root).")],
    subjects: Annotated[int, typer.Option(min=2, help="Number of subjects.")] = 12,
    seed: Annotated[int, typer.Option(help="Random seed.")] = 0,
) -> None:
    """Write tiny synthetic data exactly in the competition's real layout."""
    with cli_errors():
        comp = get_competition(competition)
        root = comp.synthesize(directory.expanduser().resolve(), subjects=subjects, seed=seed)
        files = sum(1 for p in root.rglob("*") if p.is_file())
        console.print(f"wrote {files} files for {subjects} subjects to [bold]{root}[/]")
