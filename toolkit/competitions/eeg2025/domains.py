"""Domain labels of training windows (subject or release) for a domain-adversarial head.

Wraps the eeg2025 datamodule without changing how it reads data: each training block is a
memory map of one window-cache entry, whose meta.json names the recording's subject and source
(one source per release). Training batches become (X, y, {"domain": ids}); validation is as
before (its subjects are unseen domains)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from toolkit.competitions.eeg2025.datamodule import EEG2025DataModule, WindowDataset
from toolkit.errors import DataError
from toolkit.fileio import read_json


def block_domain(block: np.ndarray, by: str) -> str:
    """The subject (or source, i.e. release) of one cached block of windows."""
    filename = getattr(block, "filename", None)
    if filename is None:
        raise DataError("data.domain: training windows are not memory-mapped cache entries")
    meta = read_json(Path(filename).parent / "meta.json")
    return str(meta["subject"] if by == "subject" else meta["key"]["source"])


class DomainWindows(Dataset):
    """A WindowDataset whose batches carry each window's domain id."""

    def __init__(self, windows: WindowDataset, domain_ids: np.ndarray):
        self.windows = windows
        self.domain_ids = torch.from_numpy(domain_ids.astype(np.int64))

    def __len__(self) -> int:
        return len(self.windows)

    def __getattr__(self, name: str):
        # Anything else (e.g. a loader's `set_epoch`) is the wrapped dataset's.
        if name == "windows":
            raise AttributeError(name)
        return getattr(self.windows, name)

    def window(self, k: int) -> np.ndarray:
        return self.windows.window(k)

    def __getitem__(self, k: int):
        x, y = self.windows[k]
        return x, y, {"domain": self.domain_ids[k : k + 1]}

    def __getitems__(self, ks: list[int]):
        x, y = self.windows.__getitems__(ks)
        return x, y, {"domain": self.domain_ids[torch.as_tensor(ks, dtype=torch.long)]}


class DomainDataModule(EEG2025DataModule):
    """The eeg2025 datamodule with domain ids on training batches; `stats` gains `domains`."""

    def setup(self, stage: str | None = None) -> None:
        super().setup(stage)
        if isinstance(self.train_set, DomainWindows):
            return
        by = self.cfg.domain
        windows = self.train_set
        names = [block_domain(b, by) for b in windows.blocks]
        domains = sorted(set(names))
        if len(domains) < 2:
            raise DataError(
                f"data.domain={by}: the training windows come from {len(domains)} {by}; a "
                "domain-adversarial head needs at least 2"
            )
        block_ids = np.array([domains.index(n) for n in names])
        self.train_set = DomainWindows(windows, block_ids[windows.index[:, 0]])
        self.stats["domain"] = by
        self.stats["domains"] = domains
