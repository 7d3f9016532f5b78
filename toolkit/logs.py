"""Library noise the toolkit silences (banners, deprecation hints of code it does not own)."""

from __future__ import annotations

import logging
import warnings


def quiet_libraries() -> None:
    """Silence library banners and hints that do not apply to toolkit runs."""
    for name in ("lightning.pytorch", "lightning.fabric", "lightning"):
        logging.getLogger(name).setLevel(logging.WARNING)
    for pattern in (
        ".*does not have many workers.*",
        ".*The number of training batches.*",
        ".*LeafSpec.*",
        ".*Checkpoint directory.*exists and is not empty.*",
        ".*You're resuming from a checkpoint that ended before the epoch ended.*",
        ".*isinstance.*treespec.*",
        ".*is deprecated. Please switch to.*",
        ".*padding='same' with even kernel lengths.*",
        ".*Montage name 'standard_1020' is deprecated.*",
    ):
        warnings.filterwarnings("ignore", message=pattern)
