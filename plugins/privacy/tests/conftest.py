"""Quiet tiny runs through the engine's runner, and the engine command in-process."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

QUIET = ["trainer.enable_progress_bar=false", "trainer.enable_model_summary=false"]
#: A small feature-vector task the core's mlp learns in a few epochs (LayerNorm: fine for DP-SGD).
TINY = ["model=mlp", "model.hidden=[32]", "data=synthetic", "data.num_samples=400", "data.num_features=8"]


def _train(root: Path, name: str, overrides: list[str], resume: Path | None = None) -> Path:
    import engine
    from engine.config import compose, validate
    from engine.runner import run

    reg = engine.get_registry()
    if resume is not None:
        from engine.compose import load_file

        base = load_file(resume / "config.yaml")
        cfg = validate(compose(reg, None, [], overrides, base=base), reg)
        return Path(run(cfg, reg, resume=resume).run_dir)
    cfg = validate(compose(reg, None, [], [*overrides, *QUIET, f"run.dir={root}", f"run.name={name}"]), reg)
    return Path(run(cfg, reg).run_dir)


@pytest.fixture(scope="session")
def train() -> Any:
    """``train(root, name, overrides, resume=None) -> run directory``."""
    return _train


@pytest.fixture(scope="session")
def dp_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three epochs of DP-SGD at a target epsilon of 4, with a scheduler (it steps the private optimizer)."""
    root = tmp_path_factory.mktemp("runs")
    overrides = [*TINY, "privacy.target_epsilon=4", "scheduler=cosine", "trainer.max_epochs=3", "optimizer.lr=0.01"]
    return _train(root, "dp", overrides)


@pytest.fixture(scope="session")
def cli() -> Any:
    """``cli(capsys, *args) -> (exit code, stdout, stderr)``: the engine command in-process."""

    def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
        from engine.cli import main

        code = main(list(args))
        out = capsys.readouterr()
        return code, out.out, out.err

    return run
