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
    force: Annotated[
        bool, typer.Option("--force", help="Replace a folder that is not empty (whole).")
    ] = False,
) -> None:
    """Write tiny synthetic data exactly in the competition's real layout."""
    from toolkit.errors import ToolkitError
    from toolkit.fileio import atomic_dir

    with cli_errors():
        comp = get_competition(competition)
        target = directory.expanduser().resolve()
        if target.exists() and not target.is_dir():
            raise ToolkitError(f"{directory}: a file, not a folder")
        if target.is_dir() and any(target.iterdir()) and not force:
            raise ToolkitError(
                f"{directory}: not empty; choose an empty folder, or --force to replace it "
                "whole (its current files are removed)"
            )
        # Written beside and renamed into place: a consistent tree or none, never a mix.
        with atomic_dir(target) as tmp:
            written = comp.synthesize(tmp, subjects=subjects, seed=seed)
            relative = written.relative_to(tmp)
        root = target / relative
        files = sum(1 for p in root.rglob("*") if p.is_file())
        console.print(f"wrote {files} files for {subjects} subjects to [bold]{root}[/]")
