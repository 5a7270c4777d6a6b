"""Shared by the bench scripts: find or train the model to measure (the vision digits model when available)."""

from __future__ import annotations

import importlib.util
import tempfile
from pathlib import Path


def digits_available() -> bool:
    return importlib.util.find_spec("engine_vision") is not None


def get_run(run: str | None, epochs: int = 15) -> Path:
    """``run`` if given; else train the digits CNN (vision/digits) or, without the vision plugin, the core MLP."""
    if run:
        return Path(run)
    import engine

    root = Path(tempfile.mkdtemp(prefix="deploy-bench-"))
    recipe = "vision/digits" if digits_available() else "core/mlp-synthetic"
    overrides = [
        f"trainer.max_epochs={epochs}",
        "trainer.enable_progress_bar=false",
        "trainer.enable_model_summary=false",
        f"run.dir={root}",
        "run.name=bench",
    ]
    print(f"training {recipe} for {epochs} epochs into {root} (pass --run RUN to reuse a trained run)", flush=True)
    return Path(engine.train(engine.plan(engine.compose(recipe, overrides=overrides))).run_dir)
