"""Poisson sampling as Opacus does it, for the training DataLoader of a run.

Each step every training sample joins the batch independently with probability ``q`` (the
*sample rate*, ``1 / len(loader)``, so the expected batch size stays ``data.batch_size``), for
``int(1/q)`` steps an epoch: Opacus' ``UniformWithReplacementSampler``. Batches vary in size and may
be empty; Opacus' collate wrapper turns an empty one into zero-length tensors of the right shape.

The only difference from ``opacus.data_loader.DPDataLoader`` is where the randomness comes from: each
batch's draw is seeded by the run's seed, the epoch and the batch's index, so a resumed run draws the
batches the uninterrupted run would have.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import torch
from opacus.data_loader import dtype_safe, shape_safe, wrap_collate_with_empty
from opacus.utils.uniform_sampler import UniformWithReplacementSampler
from torch.utils.data import DataLoader, IterableDataset, default_collate

from engine import ConfigError


class EpochPoissonSampler(UniformWithReplacementSampler):
    """Opacus' Poisson batch sampler, its draws keyed on ``(seed, epoch, batch index)``.

    Args:
        num_samples: training samples.
        sample_rate: probability of each sample to be in a batch.
        seed: the run's seed.
        epoch: returns the current epoch when a batch is drawn (the trainer's).
    """

    def __init__(self, *, num_samples: int, sample_rate: float, seed: int, epoch: Callable[[], int]) -> None:
        super().__init__(num_samples=num_samples, sample_rate=sample_rate)
        self.seed, self.epoch = int(seed), epoch

    def __iter__(self) -> Iterator[list[int]]:
        for index in range(self.steps):
            generator = torch.Generator().manual_seed(((self.seed * 1_000_003) + int(self.epoch())) * 1_000_033 + index)
            mask = torch.rand(self.num_samples, generator=generator) < self.sample_rate
            yield mask.nonzero(as_tuple=False).reshape(-1).tolist()


def poisson_loader(loader: DataLoader, seed: int, epoch: Callable[[], int]) -> DataLoader:
    """``loader`` (the run's training DataLoader) with Poisson-sampled batches; everything else kept."""
    if not isinstance(loader, DataLoader):
        raise ConfigError(
            f"privacy: the run's train_dataloader() returns {type(loader).__name__}, not a torch DataLoader; "
            "Poisson sampling needs the DataLoader over a map-style dataset"
        )
    dataset = loader.dataset
    if isinstance(dataset, IterableDataset):
        raise ConfigError("privacy: the training data is an IterableDataset; Poisson sampling needs a map-style one")
    if len(loader) == 0 or len(dataset) == 0:  # type: ignore[arg-type]
        raise ConfigError("privacy: the training split is empty")
    sampler = EpochPoissonSampler(
        num_samples=len(dataset),  # type: ignore[arg-type]
        sample_rate=1 / len(loader),
        seed=seed,
        epoch=epoch,
    )
    first = dataset[0]
    parts = first if isinstance(first, (tuple, list)) else (first,)
    collate = wrap_collate_with_empty(
        collate_fn=loader.collate_fn or default_collate,
        sample_empty_shapes=[(0, *shape_safe(x)) for x in parts],
        dtypes=[dtype_safe(x) for x in parts],
    )
    return DataLoader(
        dataset,
        batch_sampler=sampler,
        collate_fn=collate,
        num_workers=loader.num_workers,
        pin_memory=loader.pin_memory,
        timeout=loader.timeout,
        worker_init_fn=loader.worker_init_fn,
        multiprocessing_context=loader.multiprocessing_context,
        generator=loader.generator,
        prefetch_factor=loader.prefetch_factor,
        persistent_workers=loader.persistent_workers,
    )
