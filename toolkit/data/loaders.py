"""Training loaders that resume mid-epoch exactly.

The order of an epoch depends only on (seed, epoch), never on the global random state, and the
loader is *stateful* in Lightning's sense (`state_dict` / `load_state_dict`): every checkpoint
records how many batches of the current epoch were served, and a resumed run skips exactly
those (by index, without loading them), so the interrupted epoch is finished, not re-run or
skipped. Datasets with random augmentation can draw it per item from `item_rng` (seeded by the
seed, the epoch and the index) so it does not depend on worker processes or on where a run was
cut either.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler


def item_rng(seed: int, epoch: int, index: int) -> np.random.Generator:
    """The random generator of one item in one epoch (augmentation that survives resumes)."""
    return np.random.default_rng((seed, epoch, index))


class EpochSampler(Sampler[int]):
    """A permutation of range(n) drawn from (seed, epoch), optionally starting part-way in."""

    def __init__(self, n: int, seed: int, shuffle: bool = True):
        self.n = n
        self.seed = seed
        self.shuffle = shuffle
        self.epoch = 0
        self.start = 0  # items of this epoch already served (set by the loader on resume)

    def set_epoch(self, epoch: int) -> None:
        """Called by Lightning before each epoch."""
        self.epoch = epoch

    def order(self) -> np.ndarray:
        """This process's items of the epoch: all of them, or under DDP every world-th item of
        one shared permutation (padded by wrapping, as DistributedSampler does)."""
        order = (
            np.random.default_rng((self.seed, self.epoch)).permutation(self.n)
            if self.shuffle
            else np.arange(self.n)
        )
        rank, world = _rank_and_world()
        if world == 1:
            return order
        per_rank = -(-self.n // world)
        order = np.resize(order, per_rank * world)
        return order[rank::world]

    def __iter__(self) -> Iterator[int]:
        yield from (int(i) for i in self.order()[self.start :])

    def __len__(self) -> int:
        # The whole epoch (of this process), so Lightning's batch counts stay those of a full
        # epoch even while a resumed pass skips its first batches.
        return -(-self.n // _rank_and_world()[1])


def _rank_and_world() -> tuple[int, int]:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


class ResumableLoader(DataLoader):
    """A DataLoader over `dataset` in `EpochSampler` order that Lightning can resume mid-epoch.
    Under DDP the sampler shards the epoch itself (run the Trainer with
    `use_distributed_sampler=False`, as the engine does).

    A dataset with `set_epoch(epoch)` is told the epoch before each pass (workers are started
    afresh each epoch so they see it). The loader's own generator (for worker seeds) is seeded
    from (seed, epoch) so creating an iterator never draws from the global random state.
    """

    def __init__(
        self,
        dataset: Dataset,
        *,
        batch_size: int,
        seed: int,
        shuffle: bool = True,
        drop_last: bool = False,
        **kwargs: Any,
    ):
        if hasattr(dataset, "set_epoch"):
            kwargs["persistent_workers"] = False
        sampler = EpochSampler(len(dataset), seed, shuffle)  # type: ignore[arg-type]
        super().__init__(
            dataset,
            batch_size=batch_size,
            sampler=sampler,
            drop_last=drop_last,
            generator=torch.Generator(),
            **kwargs,
        )
        self.seed = seed
        self._served = 0
        self._resume: dict[str, int] | None = None

    @property
    def epoch_sampler(self) -> EpochSampler:
        assert isinstance(self.sampler, EpochSampler)
        return self.sampler

    def __iter__(self) -> Iterator[Any]:  # type: ignore[override]
        # A generator: nothing below runs until the first batch is asked for, which is after
        # Lightning has called set_epoch for the epoch it is about to run.
        sampler = self.epoch_sampler
        skip = 0
        if self._resume is not None and self._resume["epoch"] == sampler.epoch:
            skip = self._resume["batches"]
        self._resume = None
        sampler.start = min(skip * int(self.batch_size or 1), len(sampler))
        self._served = skip
        self.generator.manual_seed(hash((self.seed, sampler.epoch)) & 0x7FFF_FFFF_FFFF_FFFF)
        set_epoch = getattr(self.dataset, "set_epoch", None)
        if set_epoch is not None:
            set_epoch(sampler.epoch)
        try:
            for batch in super().__iter__():
                self._served += 1
                yield batch
        finally:
            sampler.start = 0

    def state_dict(self) -> dict[str, int]:
        """Where the current epoch stands (saved in every Lightning checkpoint)."""
        return {"epoch": self.epoch_sampler.epoch, "batches": self._served, "seed": self.seed}

    def load_state_dict(self, state: dict[str, int]) -> None:
        """Resume: the next pass over `state['epoch']` skips the batches already served."""
        self._resume = {"epoch": int(state["epoch"]), "batches": int(state["batches"])}
        self.epoch_sampler.set_epoch(int(state["epoch"]))
