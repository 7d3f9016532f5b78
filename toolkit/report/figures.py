"""The figures every run has: learning curves from history.json, final metrics beside the
baselines. Each writes one PNG (atomically) and returns its path."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from toolkit.fileio import atomic_path

DPI = 110
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b")


@contextmanager
def figure(path: Path, *, width: float = 6.4, height: float = 4.0) -> Iterator[Figure]:
    """A new figure, drawn by the Agg canvas (no display, no pyplot state), saved to `path`
    as PNG (atomically) when the block ends. The PNG carries no software stamp."""
    fig = Figure(figsize=(width, height))
    FigureCanvasAgg(fig)
    yield fig
    fig.tight_layout()
    with atomic_path(path) as tmp, tmp.open("wb") as fh:
        fig.savefig(fh, format="png", dpi=DPI, metadata={"Software": None})


def _series(history: list[dict[str, Any]], key: str) -> tuple[list[float], list[float]]:
    points = [(r["epoch"], r[key]) for r in history if r.get(key) is not None]
    return [p[0] for p in points], [p[1] for p in points]


def learning_curves(history: list[dict[str, Any]], metric: str, path: Path) -> Path:
    """Three panels over epochs: train/val loss, the validation metric (and the competition's
    score when the run had an evaluate hook), and the learning rate."""
    with figure(path, width=11, height=3.4) as fig:
        loss, score, lr = fig.subplots(1, 3)
        for key, colour in (("train_loss", PALETTE[0]), ("val_loss", PALETTE[1])):
            x, y = _series(history, key)
            loss.plot(x, y, marker="o", ms=3, color=colour, label=key)
        loss.set(title="loss", xlabel="epoch")
        loss.legend()
        for key, colour in ((f"val_{metric}", PALETTE[2]), ("eval_score", PALETTE[3])):
            x, y = _series(history, key)
            if y:
                score.plot(x, y, marker="o", ms=3, color=colour, label=key)
        score.set(title=metric, xlabel="epoch")
        score.legend()
        x, y = _series(history, "lr")
        lr.plot(x, y, marker="o", ms=3, color=PALETTE[4])
        lr.set(title="learning rate", xlabel="epoch")
        lr.ticklabel_format(axis="y", style="sci", scilimits=(-2, 3))
        for ax in (loss, score, lr):
            ax.grid(alpha=0.3)
    return path


def metrics_bars(metrics: dict[str, Any], path: Path) -> Path:
    """The final validation score beside each baseline (and the evaluate hook's, if any)."""
    metric = metrics.get("metric", "score")
    bars = {"model (validation)": metrics.get(f"val_{metric}")}
    bars.update({f"baseline: {k}": v for k, v in metrics.get("baselines", {}).items()})
    if metrics.get("eval_score") is not None:
        bars["model (evaluate hook)"] = metrics["eval_score"]
        bars.update({f"baseline: {k}": v for k, v in metrics.get("eval_baselines", {}).items()})
    bars = {k: float(v) for k, v in bars.items() if v is not None}
    better = "lower" if metrics.get("mode") == "min" else "higher"
    with figure(path, width=6.4, height=max(2.2, 0.6 + 0.5 * len(bars))) as fig:
        ax = fig.subplots()
        names = list(bars)[::-1]
        values = [bars[n] for n in names]
        colours = [PALETTE[0] if n.startswith("model") else "#999999" for n in names]
        ax.barh(names, values, color=colours)
        for i, value in enumerate(values):
            ax.text(value, i, f" {value:.4g}", va="center")
        ax.set(title=f"{metric} ({better} is better)")
        ax.margins(x=0.2)
    return path


def predicted_vs_true(
    y_true, y_pred, path: Path, *, title: str, unit: str = "", score: str = ""
) -> Path:
    """A regression's predictions against the truth, with the identity line and the mean
    predictor (a horizontal line at the mean of the truth)."""
    import numpy as np

    y_true = np.asarray(y_true, dtype=float).ravel()
    y_pred = np.asarray(y_pred, dtype=float).ravel()
    with figure(path, width=5.2, height=4.6) as fig:
        ax = fig.subplots()
        ax.scatter(y_true, y_pred, s=14, alpha=0.6, color=PALETTE[0], label="validation sample")
        low = float(min(y_true.min(), y_pred.min()))
        high = float(max(y_true.max(), y_pred.max()))
        ax.plot([low, high], [low, high], color="#999999", ls="--", lw=1, label="perfect")
        ax.axhline(float(y_true.mean()), color=PALETTE[1], lw=1, label="mean predictor")
        suffix = f" ({unit})" if unit else ""
        ax.set(title=title + (f"\n{score}" if score else ""), xlabel=f"true{suffix}",
               ylabel=f"predicted{suffix}")  # fmt: skip
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    return path
