"""A run handed to ``engine deploy``, ``predict`` or ``serve`` is data: a planted pickle never runs, and a
manifest naming an artifact outside its directory is refused."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from engine.testing import plant_pickle


def _refused(out: Any, marker: Path, names: str) -> None:
    assert not marker.exists(), "code from a checkpoint ran"
    assert out.returncode == 2, out.stderr[-2000:]
    assert names in out.stderr and "Traceback" not in out.stderr, out.stderr[-2000:]


@pytest.mark.slow
def test_deploy_predict_and_serve_load_as_data(mlp_run: Path, tmp_path: Path, cli: Any) -> None:
    run = Path(shutil.copytree(mlp_run, tmp_path / "copy"))
    marker = tmp_path / "marker"
    plant_pickle(run / "checkpoints" / "best.ckpt", marker)
    sample = tmp_path / "x.json"
    sample.write_text(json.dumps([[0.0] * 12]))
    _refused(cli("deploy", str(run), "--target", "torchscript"), marker, "best.ckpt")
    _refused(cli("predict", str(run), str(sample)), marker, "best.ckpt")
    engine_exe = Path(sys.executable).with_name("engine")
    served = subprocess.run(
        [str(engine_exe), "serve", str(run), "--port", "0"], capture_output=True, text=True, timeout=120, env=os.environ
    )
    _refused(served, marker, "best.ckpt")
    # a manifest naming an artifact outside its directory
    out_dir = tmp_path / "d"
    deployed = cli("deploy", str(mlp_run), "--target", "torchscript", "--out", str(out_dir), "--no-timing")
    assert deployed.returncode == 0, deployed.stderr
    manifest = json.loads((out_dir / "manifest.json").read_text())
    assert not Path(manifest["checkpoint"]).is_absolute() and "run" not in manifest
    for name in ("../model.pt", str(out_dir / manifest["artifact"])):
        (out_dir / "manifest.json").write_text(json.dumps({**manifest, "artifact": name}))
        out = cli("predict", str(mlp_run), str(sample), "--artifact", str(out_dir))
        assert out.returncode == 2 and "not a file of that directory" in out.stderr, out.stderr


def test_a_run_ensembled_with_itself_predicts_what_it_predicts_alone(mlp_run: Path, tmp_path: Path, cli: Any) -> None:
    sample = tmp_path / "x.json"
    sample.write_text(json.dumps([[0.1, -0.2, 0.3, 0.0, 1.0, -1.0] * 2, [1.0, 1.0, 0.0, 0.0, 0.0, 0.5] * 2]))
    ensembled = cli("predict", str(mlp_run), str(sample), "--ensemble", str(mlp_run), "--json")
    single = cli("predict", str(mlp_run), str(sample), "--json")
    assert ensembled.returncode == 0 and single.returncode == 0, ensembled.stderr + single.stderr
    pairs = zip(ensembled.stdout.splitlines(), single.stdout.splitlines(), strict=True)
    for a, b in ((json.loads(x), json.loads(y)) for x, y in pairs):
        assert a["label"] == b["label"] and abs(a["probability"] - b["probability"]) < 1e-5
        assert a["members"] == [b["label"], b["label"]]
