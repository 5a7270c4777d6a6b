"""A run directory is data: nothing in it runs code, and nothing it records leads out of it.

A checkpoint that would run code when unpickled (it writes a marker file) is planted on every
path the engine loads weights from; the marker must never appear, and each command must end in
one line naming the file, exit 2.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
import torch

import engine
from engine.testing import run_cli

QUIET = ["trainer.enable_progress_bar=false", "trainer.enable_model_summary=false"]
TINY = ["model=mlp", "model.hidden=[16]", "data=synthetic", "data.num_samples=300", "trainer.max_epochs=2", *QUIET]


class Evil:
    """Unpickling this writes a marker file: proof that code from the file ran."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self) -> tuple:
        return (open, (self.marker, "w"))


def plant(path: Path, marker: Path) -> Path:
    torch.save({"state_dict": Evil(marker), "global_step": 1}, path)
    return path


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("trust-env")
    return {"ENGINE_CACHE_DIR": str(root / "cache"), "ENGINE_HOME": str(root / "home")}


@pytest.fixture(scope="module")
def good(tmp_path_factory: pytest.TempPathFactory, env: dict[str, str]) -> Path:
    root = tmp_path_factory.mktemp("trust")
    out = run_cli("run", *TINY, f"run.dir={root}", "run.name=good", env=env)
    assert out.returncode == 0, out.stderr
    return root / "good"


def _copy(good: Path, tmp_path: Path, name: str = "copy") -> Path:
    return Path(shutil.copytree(good, tmp_path / name))


def _refused(out: Any, marker: Path, names: str) -> None:
    assert not marker.exists(), "code from a checkpoint ran"
    assert out.returncode == 2, out.stderr[-2000:]
    assert names in out.stderr and "Traceback" not in out.stderr, out.stderr[-2000:]


def test_a_planted_pickle_never_runs_on_resume(good: Path, tmp_path: Path, cli) -> None:
    run = _copy(good, tmp_path)
    marker = tmp_path / "marker"
    for name in ("last.ckpt", "best.ckpt"):  # no safe checkpoint to fall back on
        plant(run / "checkpoints" / name, marker)
    _refused(cli("run", "--resume", str(run), "trainer.max_epochs=3"), marker, ".ckpt")  # more to train


@pytest.mark.parametrize("planted", ["best.ckpt", "last.ckpt"])
def test_a_planted_pickle_never_runs_when_a_run_is_reopened(good: Path, tmp_path: Path, planted: str) -> None:
    run = _copy(good, tmp_path)
    marker = tmp_path / "marker"
    plant(run / "checkpoints" / planted, marker)
    with pytest.raises(engine.EngineError, match=planted):
        engine.open_run(run).task("best" if planted == "best.ckpt" else "last")
    assert not marker.exists(), "code from a checkpoint ran"


@pytest.mark.slow
def test_a_checkpoint_swapped_in_before_the_test_phase_is_refused(plugin_site, tmp_path: Path) -> None:
    marker = tmp_path / "marker"
    plugin_site(
        "swapper",
        f"""
from engine import hookimpl

@hookimpl
def engine_callbacks(config):
    import lightning as L
    import torch

    class Swap(L.Callback):
        def on_fit_end(self, trainer, pl_module):
            class Evil:
                def __reduce__(self):
                    return (open, ({str(marker)!r}, "w"))
            best = next(c for c in trainer.callbacks if hasattr(c, "best_model_path")).best_model_path
            torch.save({{"state_dict": Evil()}}, best)

    return [Swap()]
""",
    )
    out = run_cli("run", *TINY, f"run.dir={tmp_path}", "run.name=r")
    _refused(out, marker, "best.ckpt")


def test_recorded_paths_stay_inside_the_run(good: Path, tmp_path: Path, cli) -> None:
    outside = tmp_path / "elsewhere.ckpt"
    shutil.copy(good / "checkpoints" / "best.ckpt", outside)
    for recorded in (str(outside), "../elsewhere.ckpt"):
        run = _copy(good, tmp_path, f"copy-{len(recorded)}")
        summary = json.loads((run / "summary.json").read_text())
        (run / "summary.json").write_text(json.dumps({**summary, "best_checkpoint": recorded}))
        with pytest.raises(engine.EngineError, match="outside the run directory") as refused:
            engine.open_run(run).task()
        assert "summary.json" in refused.value.message
    summary = json.loads((good / "summary.json").read_text())
    assert summary["best_checkpoint"] == "checkpoints/best.ckpt" and summary["weights"] == "model.safetensors"
    assert "run_dir" not in summary
    environment = json.loads((good / "environment.json").read_text())
    assert environment["command"][0] == "engine"


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("- a\n- b\n", "does not hold a run's config"),
        ("3\n", "does not hold a run's config"),
        ("", "does not hold a run's config"),
        (b"model: \xff\xfe\n", "cannot read"),
        ("task: {name: core.supervised}\nmodel: {name: core.mlp}\nseed: 0\n", "no data source chosen"),
    ],
)
def test_a_broken_config_yaml_is_one_line_naming_it(good: Path, tmp_path: Path, cli, content, message) -> None:
    run = _copy(good, tmp_path)
    file = run / "config.yaml"
    file.write_bytes(content if isinstance(content, bytes) else content.encode())
    with pytest.raises(engine.EngineError, match=message) as refused:
        engine.open_run(run).task()
    assert "config.yaml" in str(refused.value)


def test_a_config_yaml_with_shorthand_names_still_opens(good: Path, tmp_path: Path, cli) -> None:
    import yaml

    run = _copy(good, tmp_path)
    cfg = yaml.safe_load((run / "config.yaml").read_text())
    cfg["optimizer"] = "core.adamw"  # `optimizer: core.adamw`, written by hand
    (run / "config.yaml").write_text(yaml.safe_dump(cfg))
    assert engine.open_run(run).task().training is False


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("run.name=" + "x" * 300, "too long for a directory name"),
        ("data.batch_size=-1", "data.batch_size must be int >= 1, got -1"),
        ("model.hiden[0]=5", "model.hiden is not set in this config"),
    ],
)
def test_bad_overrides_are_one_line(tmp_path: Path, cli, override: str, message: str) -> None:
    out = cli("run", *TINY, f"run.dir={tmp_path}", override)
    assert out.returncode == 2 and message in out.stderr and "Traceback" not in out.stderr, out.stderr[-1500:]


def test_a_list_element_override_works(cli) -> None:
    out = cli("run", *TINY, "model.hidden[0]=5", "--dry-run")
    assert out.returncode == 0 and "hidden:\n  - 5\n" in out.stdout, out.stderr
