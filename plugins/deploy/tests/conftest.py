"""A tiny trained core MLP run, shared by every test of the session (a few seconds to train)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest


def _train(root: Path, name: str, recipe: str | None, overrides: list[str]) -> Path:
    import engine
    from engine.config import compose, validate
    from engine.runner import run

    reg = engine.get_registry()
    quiet = ["trainer.enable_progress_bar=false", "trainer.enable_model_summary=false"]
    cfg = validate(compose(reg, recipe, [], [*overrides, *quiet, f"run.dir={root}", f"run.name={name}"]), reg)
    return Path(run(cfg, reg).run_dir)


@pytest.fixture(scope="session")
def mlp_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("runs")
    return _train(
        root,
        "mlp",
        "core/mlp-synthetic",
        ["data.num_samples=600", "data.num_features=12", "model.hidden=[32]", "trainer.max_epochs=3"],
    )


@pytest.fixture(scope="session")
def onnx_dir(mlp_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from engine_deploy.deploy import deploy

    out = tmp_path_factory.mktemp("onnx")
    deploy(mlp_run, "onnx", out=out, timing=False)
    return out


def _cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """The engine command in-process (same parser, handlers and error printing as the installed script)."""
    from engine.cli import main

    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture(scope="session")
def train() -> Any:
    """``train(root, name, recipe, overrides) -> run directory``: a quiet run through the engine's runner."""
    return _train


@pytest.fixture(scope="session")
def cli() -> Any:
    """``cli(capsys, *args) -> (exit code, stdout, stderr)``: the engine command in-process."""
    return _cli
