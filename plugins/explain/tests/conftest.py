"""Tiny trained runs shared by the session (``cli``, ``train`` and ``one_thread`` come from `engine.testing`)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest


@pytest.fixture(autouse=True, scope="session")
def _threads(one_thread: None) -> Iterator[None]:
    """Tiny models: one torch thread is several times faster on a shared machine."""
    yield


#: Only these columns decide the label of the synthetic table below.
DECISIVE = ("x1", "x4")


def write_table(path: Path, rows: int, seed: int, label: bool = True) -> Path:
    """Eight standard-normal features; the label is ``pos`` exactly when x1 - x4 > 0 (the rest is noise)."""
    import torch

    g = torch.Generator().manual_seed(seed)
    x = torch.randn(rows, 8, generator=g)
    names = [f"x{i}" for i in range(8)]
    lines = [",".join([*names, "label"] if label else names)]
    for r in x.tolist():
        cells = [f"{v:.5f}" for v in r]
        lines.append(",".join([*cells, "pos" if r[1] - r[4] > 0 else "neg"] if label else cells))
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="session")
def table_run(train: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The core's mlp trained on the table: only x1 and x4 determine the label."""
    root = tmp_path_factory.mktemp("runs")
    data = write_table(root / "table.csv", 600, seed=0)
    overrides = ["model=mlp", "model.hidden=[32]", "model.dropout=0", "data=csv", f"data.path={data}",
                 "data.standardize=false", "optimizer.lr=0.01", "trainer.max_epochs=12"]  # fmt: skip
    return Path(train(*overrides, root=root, name="table").run_dir)


@pytest.fixture(scope="session")
def rows(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """48 fresh rows of the same table (with its header, the label column left out by name)."""
    return write_table(tmp_path_factory.mktemp("inputs") / "rows.csv", 48, seed=1)
