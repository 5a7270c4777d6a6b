"""Data sources and their adaptor to Lightning (behind `engine.data`)."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import Any

import lightning as L
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from engine._contract.errors import ConfigError
from engine._contract.protocols import Collates, LoadsArtifacts, SavesArtifacts, implements


class DataSource:
    """Base class for data sources: override `datasets` and `facts`.

    The core also calls ``save_artifacts(run_dir)``, ``load_artifacts(run_dir)`` and ``load_input(path)``
    when a source has them (the protocols of `engine.protocols`).
    """

    #: Optional ``collate_fn`` for the DataLoader.
    collate_fn: Callable[[list[Any]], Any] | None = None

    @property
    def facts(self) -> dict[str, Any]:
        """What the data knows about itself (``num_classes``, ``input_shape`` …)."""
        return {}

    def datasets(self) -> dict[str, Dataset]:
        """``{"train": ..., "val": ..., "test": ...}``; ``val`` and ``test`` are optional."""
        raise NotImplementedError


class ArrayDataset(Dataset):
    """``(x[i], y[i])`` pairs from tensors, with an optional per-sample transform on x."""

    def __init__(
        self, x: torch.Tensor, y: torch.Tensor, transform: Callable[[torch.Tensor], torch.Tensor] | None = None
    ):
        if len(x) != len(y):
            raise ValueError(f"inputs and targets differ in length: {len(x)} vs {len(y)}")
        self.x, self.y, self.transform = x, y, transform

    def __len__(self) -> int:
        return len(self.x)

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.x[i]
        return (self.transform(x) if self.transform else x), self.y[i]


def split_indices(
    n: int,
    val_fraction: float,
    test_fraction: float,
    seed: int,
    stratify: Sequence[int] | torch.Tensor | None = None,
) -> dict[str, torch.Tensor]:
    """Seeded train/val/test index split, stratified by class when ``stratify`` is given."""
    if not 0 <= val_fraction < 1 or not 0 <= test_fraction < 1 or val_fraction + test_fraction >= 1:
        raise ConfigError(
            f"val_fraction ({val_fraction}) and test_fraction ({test_fraction}) must be in [0, 1) and sum below 1"
        )
    g = torch.Generator().manual_seed(seed)
    if stratify is None:
        groups = [torch.arange(n)]
    else:
        labels = torch.as_tensor(stratify)
        groups = [torch.nonzero(labels == c).flatten() for c in torch.unique(labels)]
    groups = [idx[torch.randperm(len(idx), generator=g)] for idx in groups]
    out: dict[str, list[torch.Tensor]] = {"train": [], "val": [], "test": []}
    for idx in groups:
        n_test = round(len(idx) * test_fraction)
        n_val = round(len(idx) * val_fraction)
        out["test"].append(idx[:n_test])
        out["val"].append(idx[n_test : n_test + n_val])
        out["train"].append(idx[n_test + n_val :])
    result = {}
    for k, parts in out.items():
        cat = torch.cat(parts) if parts else torch.empty(0, dtype=torch.long)
        if len(cat):
            result[k] = cat[torch.randperm(len(cat), generator=g)]
    return result


class EpochShuffleSampler(Sampler[int]):
    """A permutation that depends only on ``seed`` and the epoch (Lightning calls ``set_epoch``)."""

    def __init__(self, length: int, seed: int) -> None:
        self.length, self.seed, self.epoch = length, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[int]:
        g = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        return iter(torch.randperm(self.length, generator=g).tolist())

    def __len__(self) -> int:
        return self.length


class SourceDataModule(L.LightningDataModule):
    """A ``LightningDataModule`` over any `DataSource`."""

    def __init__(
        self,
        source: DataSource,
        batch_size: int = 64,
        num_workers: int = 0,
        pin_memory: bool = False,
        seed: int = 0,
        on_splits: Callable[[dict[str, Dataset], Any, int], Mapping[str, Dataset]] | None = None,
    ) -> None:
        super().__init__()
        self.source = source
        self.batch_size, self.num_workers, self.pin_memory, self.seed = batch_size, num_workers, pin_memory, seed
        self.on_splits = on_splits  # (splits, source, seed) -> the splits to use: engine_datasets_built in a run
        self._splits: Mapping[str, Dataset] | None = None

    @property
    def facts(self) -> dict[str, Any]:
        return dict(self.source.facts)

    @property
    def splits(self) -> Mapping[str, Dataset]:
        if self._splits is None:
            splits = dict(self.source.datasets())
            if "train" not in splits:
                raise ValueError(f"data source {type(self.source).__name__} has no 'train' split")
            self._splits = splits if self.on_splits is None else self.on_splits(splits, self.source, self.seed)
        return self._splits

    def save_artifacts(self, run_dir: Any) -> None:
        """Let the source write what later use of the run needs (e.g. a trained tokenizer)."""
        if implements(self.source, SavesArtifacts):
            self.source.save_artifacts(run_dir)

    def load_artifacts(self, run_dir: Any) -> None:
        """Let the source read back what ``save_artifacts`` wrote, instead of rebuilding it."""
        if implements(self.source, LoadsArtifacts):
            self.source.load_artifacts(run_dir)

    @property
    def collate_fn(self) -> Callable[[list[Any]], Any] | None:
        """The source's ``collate_fn`` (padding of variable-length text …), if it has one."""
        return self.source.collate_fn if implements(self.source, Collates) else None

    def has_split(self, name: str) -> bool:
        return name in self.splits and len(self.splits[name]) > 0  # type: ignore[arg-type]

    def _loader(self, split: str, shuffle: bool) -> DataLoader:
        ds = self.splits[split]
        sampler = EpochShuffleSampler(len(ds), self.seed) if shuffle else None  # type: ignore[arg-type]
        # A loader-owned generator keeps DataLoader start-up from drawing on the global RNG,
        # so resuming (which evaluates before training) leaves training randomness unchanged.
        return DataLoader(
            ds,
            batch_size=self.batch_size,
            sampler=sampler,
            num_workers=self.num_workers,
            pin_memory=self.pin_memory,
            persistent_workers=self.num_workers > 0,
            collate_fn=self.collate_fn,
            generator=torch.Generator().manual_seed(self.seed),
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", shuffle=True)

    def val_dataloader(self) -> DataLoader | list[DataLoader]:
        return self._loader("val", shuffle=False) if self.has_split("val") else []

    def test_dataloader(self) -> DataLoader | list[DataLoader]:
        return self._loader("test", shuffle=False) if self.has_split("test") else []

    def predict_dataloader(self) -> DataLoader:
        return self._loader("test" if self.has_split("test") else "val", shuffle=False)


def sample_batch(datamodule: Any, n: int = 2, split: str = "train") -> Any:
    """The first ``n`` samples of ``split`` as one batch, for a task's ``check_data``.

    Without worker processes for a `SourceDataModule`; the first batch of ``train_dataloader()`` otherwise.
    """
    if isinstance(datamodule, SourceDataModule):
        loader = DataLoader(datamodule.splits[split], batch_size=n, collate_fn=datamodule.collate_fn)
        return next(iter(loader))
    datamodule.setup("fit")
    return next(iter(datamodule.train_dataloader()))
