"""A run handed to ``engine evaluate`` is data: a planted pickle never runs, recorded paths stay inside it,
and a broken ``config.yaml`` is one line naming the file."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from engine.testing import plant_pickle


@pytest.fixture(scope="module")
def good(tmp_path_factory: pytest.TempPathFactory, tiny_run: Any) -> Path:
    return Path(tiny_run(tmp_path_factory.mktemp("trust"), "good").run_dir)


def _copy(good: Path, tmp_path: Path, name: str = "copy") -> Path:
    return Path(shutil.copytree(good, tmp_path / name))


@pytest.mark.parametrize(
    ("planted", "command"),
    [
        ("best.ckpt", ["evaluate", "{run}"]),
        ("last.ckpt", ["evaluate", "{run}", "--checkpoint", "last"]),
        ("best.ckpt", ["evaluate", "{run}", "{good}", "--ensemble"]),
    ],
)
def test_a_planted_pickle_never_runs(good: Path, tmp_path: Path, cli: Any, planted: str, command: list[str]) -> None:
    run = _copy(good, tmp_path)
    marker = tmp_path / "marker"
    plant_pickle(run / "checkpoints" / planted, marker)
    out = cli(*[a.format(run=run, good=good) for a in command])
    assert not marker.exists(), "code from a checkpoint ran"
    assert out.returncode == 2 and planted in out.stderr and "Traceback" not in out.stderr, out.stderr[-1500:]


def test_recorded_paths_stay_inside_the_run(good: Path, tmp_path: Path, cli: Any) -> None:
    outside = tmp_path / "elsewhere.ckpt"
    shutil.copy(good / "checkpoints" / "best.ckpt", outside)
    for recorded in (str(outside), "../elsewhere.ckpt"):
        run = _copy(good, tmp_path, f"copy-{len(recorded)}")
        summary = json.loads((run / "summary.json").read_text())
        (run / "summary.json").write_text(json.dumps({**summary, "best_checkpoint": recorded}))
        out = cli("evaluate", str(run))
        assert out.returncode == 2 and "outside the run directory" in out.stderr and "summary.json" in out.stderr


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("- a\n- b\n", "does not hold a run's config"),
        (b"model: \xff\xfe\n", "cannot read"),
        ("task: {name: core.supervised}\nmodel: {name: core.mlp}\nseed: 0\n", "no data source chosen"),
    ],
)
def test_a_broken_config_yaml_is_one_line_naming_it(good: Path, tmp_path: Path, cli: Any, content, message) -> None:
    run = _copy(good, tmp_path)
    (run / "config.yaml").write_bytes(content if isinstance(content, bytes) else content.encode())
    out = cli("evaluate", str(run))
    assert out.returncode == 2 and message in out.stderr and "config.yaml" in out.stderr, out.stderr[-1500:]
    assert "Traceback" not in out.stderr
