"""``engine pipeline`` with engine-deploy's ``deploy`` step (its ``engine_pipeline_steps``).

These tests need the deploy plugin (ported to the public API, with ``engine_deploy.steps``) and
onnxruntime; they are skipped, saying so, where either is missing. Everything else about steps is
tested with a test plugin's step in test_pipeline.py.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

pytest.importorskip("engine_deploy.steps", reason="needs the engine-deploy plugin with its pipeline step")
pytest.importorskip("onnxruntime", reason="the onnx deploy target needs onnxruntime")

STAGE = {
    "model": {"name": "mlp", "hidden": [8]},
    "data": {"name": "synthetic", "num_samples": 200},
    "trainer": {"max_epochs": 1, "enable_progress_bar": False, "enable_model_summary": False},
}


def _write(tmp_path: Path, stages: dict[str, Any]) -> Path:
    file = tmp_path / "ft.yaml"
    file.write_text(yaml.safe_dump({"stages": stages}, sort_keys=False))
    return file


@pytest.mark.slow
def test_a_deploy_stage_exports_an_earlier_stage(cli: Any, tmp_path: Path) -> None:
    export = {"deploy": {"run": "${stages.fine}", "target": "onnx", "samples": 32, "timing": False}}
    stages = {"fine": STAGE, "export": export}
    file, d = _write(tmp_path, stages), tmp_path / "p"
    out = cli("pipeline", str(file), "--dir", str(d), "--dry-run")
    assert out.returncode == 0, out.stderr
    assert "deploy fine (target=deploy.onnx)" in out.stdout and "deploy (not run yet)" in out.stdout

    out = cli("pipeline", str(file), "--dir", str(d), "-q")
    assert out.returncode == 0, out.stderr
    manifest = json.loads((d / "stages/export/manifest.json").read_text())
    assert (d / "stages/export" / manifest["artifact"]).is_file()
    record = json.loads((d / "pipeline.json").read_text())["stages"]["export"]
    assert record["status"] == "completed" and record["kind"] == "deploy" and record["step"] == "deploy.deploy"
    assert record["metrics"]["passed"] is True and record["primary_metric"]["name"] == "test/accuracy"
    assert "test/accuracy=" in out.stdout.splitlines()[2]

    out = cli("pipeline", str(file), "--dir", str(d), "-q")
    assert out.returncode == 0 and "skipped: export (completed, same config)" in out.stderr, out.stderr


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        ({"target": "onnxx"}, "unknown deploy 'onnxx' — did you mean 'onnx'?"),
        ({"options": {"opsett": 17}}, "unknown parameter 'deploy.options.opsett' for deploy target 'deploy.onnx'"),
        ({"samplse": 32}, "unknown parameter 'deploy.samplse' for deploy_step() — did you mean 'samples'?"),
        ({"samples": 0}, "deploy.samples must be an integer >= 1, got 0"),
        ({"run": "/nowhere"}, "deploy.run: /nowhere does not exist"),
    ],
)
def test_a_deploy_step_is_checked_at_dry_run(cli: Any, tmp_path: Path, keys: dict[str, Any], message: str) -> None:
    export = {"deploy": {"run": "${stages.fine}", "target": "onnx", **keys}}
    out = cli("pipeline", str(_write(tmp_path, {"fine": STAGE, "export": export})), "--dir", str(tmp_path / "p"))
    assert out.returncode == 2 and f"stage 'export': {message}" in out.stderr, out.stderr
    assert not (tmp_path / "p").exists()
