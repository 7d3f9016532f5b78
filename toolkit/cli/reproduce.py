"""`toolkit reproduce BUNDLE`: retrain, re-export, re-bundle, and compare every file."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from toolkit.cli.common import cli_errors, console, settings_from

MARKS = {"ok": "[green]✓[/]", "warn": "[yellow]![/]", "differs": "[red]✗[/]"}
STATUS = {
    "same": "[green]same[/]",
    "different": "[red]different[/]",
    "missing": "[red]missing[/]",
    "extra": "[red]extra[/]",
}


def reproduce_cmd(
    ctx: typer.Context,
    bundle: Annotated[Path, typer.Argument(help="A bundle folder (or its submission.zip).")],
    workdir: Annotated[
        Path | None,
        typer.Option(help="Where to retrain and re-bundle (default: under the cache folder)."),
    ] = None,
    set_: Annotated[
        list[str] | None,
        typer.Option("--set", help="Change the recorded recipe first (a.b=value): what if?"),
    ] = None,
) -> None:
    """Rebuild a bundle from its manifest (recipe, seed) and say, file by file, whether the
    rebuild is byte-identical. Exit 0 only when every file and the environment match."""
    from toolkit.reproduce import reproduce

    with cli_errors():
        settings = settings_from(ctx)
        result = reproduce(bundle, settings, workdir, set_ or [], console)
    env = Table(show_header=False, box=None, title="environment", title_justify="left")
    for check in result.environment:
        env.add_row(MARKS[check.state], check.name, check.detail)
    console.print(env)
    table = Table(title=f"{result.bundle} vs {result.rebuilt}", title_justify="left")
    for column in ("file", "result", "detail"):
        table.add_column(column)
    for row in result.files:
        table.add_row(row.name, STATUS[row.status], row.detail)
    console.print(table)
    if set_:
        console.print(f"recipe changed before retraining: {', '.join(set_)}")
    if result.ok:
        console.print(f"[green]reproduced[/]: all {len(result.files)} files are byte-identical")
        return
    differ = result.different
    envs = [c.name for c in result.environment if c.state == "differs"]
    parts = []
    if differ:
        parts.append(f"{len(differ)} of {len(result.files)} files differ: "
                     + ", ".join(f.name for f in differ))  # fmt: skip
    if envs:
        parts.append(f"the environment differs: {', '.join(envs)}")
    console.print(f"[red]not reproduced[/]: {'; '.join(parts)}")
    raise typer.Exit(1)
