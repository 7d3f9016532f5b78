"""Reliability diagram (positive class, 15 bins) and confusion matrix, as PNG (atomic)."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from toolkit.competitions.crosssucking.metrics import BINS, expected_calibration_error
from toolkit.competitions.crosssucking.standalone import LABELS
from toolkit.fileio import atomic_path


def _save(fig, path: Path) -> Path:
    import matplotlib.pyplot as plt

    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    return path


def reliability_png(y: np.ndarray, p_tail: np.ndarray, path: Path) -> Path:
    """sklearn's calibration curve of P(tail) against the label, with the bins' counts."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.calibration import calibration_curve

    true, pred = calibration_curve(y, np.clip(p_tail, 0, 1), n_bins=BINS, strategy="uniform")
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(5, 6), height_ratios=[3, 1], sharex=True)
    top.plot([0, 1], [0, 1], "k:", label="perfectly calibrated")
    top.plot(pred, true, "o-", label="model")
    ece = expected_calibration_error(p_tail, y)
    top.set(
        ylabel="fraction of tail events",
        title=f"Reliability, P(tail), {BINS} bins (positive-class ECE {ece:.3f})",
    )
    top.legend(loc="upper left")
    bottom.hist(p_tail, bins=BINS, range=(0, 1))
    bottom.set(xlabel="predicted P(tail)", ylabel="events")
    return _save(fig, path)


def confusion_png(y: np.ndarray, p_tail: np.ndarray, path: Path) -> Path:
    """Counts of (label, prediction at P(tail) >= 0.5)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.metrics import ConfusionMatrixDisplay

    fig, ax = plt.subplots(figsize=(4, 4))
    ConfusionMatrixDisplay.from_predictions(
        y,
        (np.asarray(p_tail) >= 0.5).astype(int),
        labels=[0, 1],
        display_labels=list(LABELS),
        ax=ax,
        colorbar=False,
    )
    ax.set_title("Test events, threshold 0.5")
    return _save(fig, path)
