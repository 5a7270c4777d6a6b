"""A tiny trained core MLP run, shared by every test of the session (a few seconds to train).

``cli``, ``train`` and ``one_thread`` come from `engine.testing`.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest


@pytest.fixture(autouse=True, scope="session")
def _threads(one_thread: None) -> Iterator[None]:
    """Tiny models: one torch thread is several times faster on a shared machine."""
    yield


@pytest.fixture(scope="session")
def mlp_run(train: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    overrides = ["data.num_samples=600", "data.num_features=12", "model.hidden=[32]", "trainer.max_epochs=3"]
    root = tmp_path_factory.mktemp("runs")
    return Path(train(*overrides, root=root, recipe="core/mlp-synthetic", name="mlp").run_dir)


@pytest.fixture(scope="session")
def onnx_dir(mlp_run: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from engine_deploy.deploy import deploy

    out = tmp_path_factory.mktemp("onnx")
    deploy(mlp_run, "onnx", out=out, timing=False)
    return out


PLUGIN_DIR = Path(__file__).parent / "seq2seq_plugin"


@pytest.fixture(scope="session")
def s2s_site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """The third-party-style seq2seq plugin of ``seq2seq_plugin/`` installed for the session (an entry point)."""
    import importlib
    import os

    import engine

    site = tmp_path_factory.mktemp("s2s-site")
    info = site / "engine_s2sdemo-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: engine-s2sdemo\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[engine.plugins]\ns2sdemo = s2sdemo.plugin\n")
    paths = [str(site), str(PLUGIN_DIR)]
    with pytest.MonkeyPatch.context() as mp:
        for p in paths:
            mp.syspath_prepend(p)
        mp.setenv("PYTHONPATH", os.pathsep.join([*paths, os.environ.get("PYTHONPATH", "")]))
        importlib.invalidate_caches()
        engine.get_registry(fresh=True)
        yield site
    engine.get_registry(fresh=True)


@pytest.fixture(scope="session")
def s2s_run(s2s_site: Path, train: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A trained character-reversal run (per-batch padding, nn.TransformerDecoder): a few seconds."""
    overrides = ["data=s2sdemo.chars", "data.batch_size=16", "trainer.max_epochs=4", "optimizer.lr=0.01"]
    root = tmp_path_factory.mktemp("s2s-runs")
    return Path(train(*overrides, root=root, name="s2s").run_dir)
