"""`toolkit score COMPETITION SUBMISSION ANSWERS`: strict validation, then the score."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from toolkit.cli.common import cli_errors, console


def score_cmd(
    competition: Annotated[str, typer.Argument(help="Competition name, e.g. arc.")],
    submission: Annotated[Path, typer.Argument(help="The submission file to score.")],
    answers: Annotated[Path, typer.Argument(help="The answers, e.g. *_solutions.json.")],
) -> None:
    """Validate a submission strictly (one clear line if it is malformed) and score it."""
    from toolkit.competitions import get_competition
    from toolkit.errors import ToolkitError

    with cli_errors():
        comp = get_competition(competition)
        score = getattr(comp, "score", None)
        if score is None:
            raise ToolkitError(f"{comp.name}: no offline scorer for this competition")
        report = score(submission, answers)
        console.print(f"[bold]score[/] {report['score']:.4f}  ({comp.name} headline)")
        for key, value in report.items():
            if key in ("score", "correct", "submission"):
                continue
            shown = f"{value:.4f}" if isinstance(value, float) else str(value)
            console.print(f"  {key:<14}{shown}")
