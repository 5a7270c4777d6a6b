"""Tiny synthetic runs (the core's mlp on 300 samples), one teacher run shared by the session, fake plugins."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

#: A feature-vector task the core's mlp learns in a few epochs.
TINY = (
    "model=mlp",
    "data=synthetic",
    "data.num_samples=300",
    "data.num_features=6",
    "data.num_classes=3",
    "model.hidden=[16]",
    "trainer.max_epochs=3",
    "trainer.log_every_n_steps=1",
)


@pytest.fixture(autouse=True, scope="session")
def _threads(one_thread: None) -> None:
    """One torch thread: tiny models on a shared machine run several times faster."""


@pytest.fixture(autouse=True)
def _isolated(engine_isolated: Path) -> None:
    """Fresh registries, and a cache and settings of each test's own."""


@pytest.fixture(scope="session")
def tiny() -> tuple[str, ...]:
    """The overrides of a tiny run (`TINY`)."""
    return TINY


@pytest.fixture(scope="session")
def tiny_train(train: Any) -> Callable[..., Any]:
    """``tiny_train(root, name, *overrides) -> RunResult``: a quiet tiny run into ``root/name``."""

    def run(root: Path, name: str, *overrides: str) -> Any:
        return train(*TINY, *overrides, root=root, name=name)

    return run


@pytest.fixture(scope="session")
def teacher(tmp_path_factory: pytest.TempPathFactory, tiny_train: Callable[..., Any]) -> Path:
    """A trained run (mlp with 32 hidden units, 4 epochs): the source of init_from and the teacher of distillation."""
    import engine

    root = tmp_path_factory.mktemp("teacher")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ENGINE_CACHE_DIR", str(root / "cache"))
        mp.setenv("ENGINE_HOME", str(root / "home"))
        engine.get_registry(fresh=True)
        return Path(tiny_train(root, "teacher", "model.hidden=[32]", "trainer.max_epochs=4").run_dir)


@pytest.fixture
def fake_run(tmp_path: Path) -> Path:
    """A directory that passes for a run at ``--dry-run`` (a config.yaml): enough for torch-free checks."""
    run = tmp_path / "fake-run"
    run.mkdir()
    (run / "config.yaml").write_text("task: {name: core.supervised}\n")
    return run
