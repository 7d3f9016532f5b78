"""`toolkit ledger`: record submissions and their leaderboard scores; table, plot, CSV."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table

from toolkit.cli.common import cli_errors, console, settings_from

app = typer.Typer(
    help="The submission ledger (submissions/ledger.sqlite): what was uploaded, its local and "
    "leaderboard scores, and how many submissions are left.",
    invoke_without_command=True,
)

CompetitionOpt = Annotated[
    str | None, typer.Option("--competition", "-c", help="Only this competition.")
]


def _ledger(ctx: typer.Context):
    from toolkit.ledger import Ledger

    return Ledger.under(settings_from(ctx).submissions_dir)


def _budget(competition: str, override: int | None) -> int | None:
    if override is not None:
        return override
    from toolkit.competitions import get_competition

    return getattr(get_competition(competition), "submission_budget", None)


def _fmt(value: float | None) -> str:
    return "" if value is None else f"{value:.4f}"


@app.callback()
def table_cmd(
    ctx: typer.Context,
    competition: CompetitionOpt = None,
    budget: Annotated[
        int | None,
        typer.Option(help="Submissions allowed (default: the competition's declared budget)."),
    ] = None,
) -> None:
    """Print the ledger: local vs leaderboard score per submission, and submissions left."""
    if ctx.invoked_subcommand is not None:
        return
    from toolkit.ledger import submissions_left, submissions_used

    with cli_errors():
        ledger = _ledger(ctx)
        entries = ledger.entries(competition)
        if not entries:
            console.print(f"no submissions recorded in {ledger.path}"
                          + (f" for {competition}" if competition else ""))  # fmt: skip
            return
        table = Table(title=str(ledger.path), title_justify="left")
        for column in ("#", "date", "competition", "bundle", "recipe", "stage", "local",
                       "board", "leaderboard", "diff", "expected", "note"):  # fmt: skip
            table.add_column(column)
        for e in entries:
            diff = None if e.local_score is None else e.score - e.local_score
            table.add_row(str(e.id), e.date[:10], e.competition, e.bundle_name, e.recipe or "",
                          "" if e.stage is None else str(e.stage), _fmt(e.local_score), e.board,
                          _fmt(e.score), _fmt(diff), _fmt(e.expected_score), e.note)  # fmt: skip
        console.print(table)
        for name in sorted({e.competition for e in entries}):
            mine = [e for e in entries if e.competition == name]
            allowed = _budget(name, budget)
            left = submissions_left(mine, allowed)
            used = submissions_used(mine)
            if left is None:
                console.print(f"{name}: {used} submission(s); no budget declared (--budget N)")
            else:
                console.print(f"{name}: {used} of {allowed} submissions used, {left} left")


@app.command("add")
def add_cmd(
    ctx: typer.Context,
    bundle: Annotated[Path, typer.Argument(help="The bundle folder (or its zip) you uploaded.")],
    score: Annotated[str, typer.Option(help="The leaderboard score it got.", show_default=False)],
    board: Annotated[str, typer.Option(help="public or private.")] = "public",
    note: Annotated[str, typer.Option(help="Anything worth remembering.")] = "",
    date: Annotated[str, typer.Option(help="When it was submitted (ISO date; default: now).")] = "",
) -> None:
    """Record a submission of BUNDLE and its leaderboard score."""
    from toolkit.ledger import from_bundle, parse_score

    with cli_errors():
        value = parse_score(score)
        entry = _ledger(ctx).add(from_bundle(bundle, value, board, note, date))
        local = "" if entry.local_score is None else f", local {entry.local_score:.4f}"
        console.print(f"recorded #{entry.id}: {entry.competition} {entry.bundle_name} "
                      f"{entry.board} {entry.score:.4f}{local}")  # fmt: skip


@app.command("plot")
def plot_cmd(
    ctx: typer.Context,
    competition: CompetitionOpt = None,
    out: Annotated[Path | None, typer.Option(help="PNG to write.")] = None,
) -> None:
    """Write a PNG: local vs leaderboard score, and each stage's expected vs reached score."""
    from toolkit.errors import ToolkitError
    from toolkit.report.ledger_plot import plot_ledger

    with cli_errors():
        ledger = _ledger(ctx)
        entries = ledger.entries(competition)
        if not entries:
            raise ToolkitError(f"{ledger.path}: no submissions recorded to plot")
        path = out or ledger.path.with_name("ledger.png")
        plot_ledger(entries, path)
        console.print(f"wrote {path} ({len(entries)} records)")


@app.command("export")
def export_cmd(
    ctx: typer.Context,
    out: Annotated[Path, typer.Argument(help="CSV file to write.")],
    competition: CompetitionOpt = None,
) -> None:
    """Write the ledger as CSV."""
    with cli_errors():
        count = _ledger(ctx).write_csv(out, competition)
        console.print(f"wrote {out} ({count} records)")
