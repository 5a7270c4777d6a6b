"""Weights named by ``model.init_from`` and ``task.teacher`` are data: a planted pickle never runs, from a run
directory or from a file; a run's own ``model.safetensors`` is the safe way to hand weights on."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest

from engine.testing import plant_pickle


def _refused(out: Any, marker: Path, names: str) -> None:
    assert not marker.exists(), "code from a checkpoint ran"
    assert out.returncode == 2, out.stderr[-2000:]
    assert names in out.stderr and "Traceback" not in out.stderr, out.stderr[-2000:]


@pytest.mark.parametrize("how", ["model.init_from={run}", "task=distill task.teacher={run}"])
def test_a_planted_pickle_in_a_run_never_runs(teacher: Path, tmp_path: Path, cli: Any, tiny: Any, how: str) -> None:
    run = Path(shutil.copytree(teacher, tmp_path / "copy"))
    marker = tmp_path / "marker"
    plant_pickle(run / "checkpoints" / "best.ckpt", marker)
    args = how.format(run=run).split()
    out = cli("run", *tiny, *args, f"run.dir={tmp_path / 'out'}")
    _refused(out, marker, "best.ckpt")
    # the refusal is the teacher's checkpoint, not a teacher that "cannot read this run's inputs" (a wrong hint)
    assert "inputs" not in out.stderr and "trained on the same data" not in out.stderr, out.stderr


def test_an_init_from_file_is_loaded_as_data(teacher: Path, tmp_path: Path, cli: Any, tiny: Any) -> None:
    marker = tmp_path / "marker"
    evil = plant_pickle(tmp_path / "weights.ckpt", marker)
    _refused(cli("run", *tiny, f"model.init_from={evil}", f"run.dir={tmp_path}"), marker, "weights.ckpt")
    weights = teacher / "model.safetensors"
    assert weights.is_file()
    out = cli("run", *tiny, "model.hidden=[32]", f"model.init_from={weights}", f"run.dir={tmp_path}", "run.name=ft")
    assert out.returncode == 0, out.stderr
    assert "loaded" in out.stderr and "model.safetensors" in out.stderr


def test_a_home_directory_that_does_not_exist_is_one_line(tmp_path: Path, cli: Any, tiny: Any) -> None:
    out = cli("run", *tiny, "model.init_from=~nosuchuser-xyz/run", f"run.dir={tmp_path}")
    assert out.returncode == 2 and "no such user" in out.stderr and "Traceback" not in out.stderr
