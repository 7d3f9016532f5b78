"""`toolkit ledger plot`: local score against leaderboard score, and each stage's expected score
(from its recipe) beside the leaderboard scores it reached; one row of panels per competition."""

from __future__ import annotations

from pathlib import Path

from toolkit.ledger import Submission
from toolkit.report.figures import PALETTE, figure

STYLE = {"public": ("o", PALETTE[0]), "private": ("s", PALETTE[1])}


def _stage_label(entry: Submission) -> str:
    if entry.stage is not None:
        return f"stage {entry.stage}"
    return (entry.recipe or entry.bundle_name).split("/")[-1]


def _legend(ax) -> None:
    """One legend entry per label (scatter calls in a loop repeat them)."""
    handles, labels = ax.get_legend_handles_labels()
    unique = dict(zip(labels, handles, strict=True))
    if unique:
        ax.legend(unique.values(), unique.keys(), fontsize=8)


def _scores_panel(ax, entries: list[Submission], competition: str) -> None:
    scored = [e for e in entries if e.local_score is not None]
    for e in scored:
        marker, colour = STYLE[e.board]
        ax.scatter([e.local_score], [e.score], marker=marker, s=40, color=colour, label=e.board)
        ax.annotate(f"#{e.id}", (e.local_score, e.score), xytext=(4, 3),
                    textcoords="offset points", fontsize=8)  # fmt: skip
    values = [v for e in scored for v in (e.local_score, e.score)]
    if values:
        low, high = min(values), max(values)
        pad = (high - low) * 0.1 or 0.05
        line = [low - pad, high + pad]
        ax.plot(line, line, color="#999999", lw=1, ls="--", label="leaderboard = local")
    else:
        ax.text(0.5, 0.5, "no submission has a local score", ha="center", transform=ax.transAxes)
    metric = next((e.metric for e in scored if e.metric), "local score")
    ax.set(title=f"{competition}: local vs leaderboard", xlabel=f"local ({metric})",
           ylabel="leaderboard score")  # fmt: skip
    ax.grid(alpha=0.3)
    _legend(ax)


def _stages_panel(ax, entries: list[Submission], competition: str) -> None:
    order = {_stage_label(e): (e.stage is None, e.stage or 0) for e in entries}
    labels = sorted(order, key=lambda label: (*order[label], label))
    for i, label in enumerate(labels):
        here = [e for e in entries if _stage_label(e) == label]
        expected = [e.expected_score for e in here if e.expected_score is not None]
        if expected:
            ax.scatter([i], expected[:1], marker="_", s=600, color="#333333",
                       label="expected (recipe)")  # fmt: skip
        for e in here:
            marker, colour = STYLE[e.board]
            ax.scatter([i], [e.score], marker=marker, s=30, color=colour, alpha=0.8,
                       label=f"reached ({e.board})")  # fmt: skip
    ax.set_xticks(range(len(labels)), labels, rotation=20, ha="right")
    ax.set(title=f"{competition}: expected vs reached", ylabel="leaderboard score")
    ax.grid(alpha=0.3)
    _legend(ax)


def plot_ledger(entries: list[Submission], path: Path) -> Path:
    """Write the ledger's PNG: per competition, local vs leaderboard and the stages."""
    competitions = sorted({e.competition for e in entries})
    with figure(path, width=11, height=4.2 * len(competitions)) as fig:
        axes = fig.subplots(len(competitions), 2, squeeze=False)
        for row, competition in zip(axes, competitions, strict=True):
            mine = [e for e in entries if e.competition == competition]
            _scores_panel(row[0], mine, competition)
            _stages_panel(row[1], mine, competition)
    return path
