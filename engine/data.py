"""Data sources and their adaptor to Lightning (public).

A data source (the ``engine_data_sources`` hook) knows *facts* about its data and builds map-style
datasets per split: subclass :class:`DataSource`. The core wraps it in a :class:`SourceDataModule`
(batching, workers, a shuffle order that depends only on the seed and the epoch, so an interrupted
run resumes onto exactly the batches it would have seen).
"""

from engine._run.data import (
    ArrayDataset,
    DataSource,
    EpochShuffleSampler,
    SourceDataModule,
    sample_batch,
    split_indices,
)

__all__ = ["ArrayDataset", "DataSource", "EpochShuffleSampler", "SourceDataModule", "sample_batch", "split_indices"]
