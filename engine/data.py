"""Data sources and their adaptor to Lightning (public).

A data source knows *facts* about its data and builds map-style datasets per split;
`SourceDataModule` batches them (a shuffle order that depends only on seed and epoch).
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
