"""Every target exports the trained run's model and verifies against eager; errors are one clear line."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from engine import ConfigError, EngineError
from engine.testing import run_cli


def test_conformance(engine_check) -> None:
    passed = engine_check("deploy")
    assert "deploy 'deploy.torchscript' exports and reloads" in passed
    assert "deploy 'deploy.export' exports and reloads" in passed
    assert "deploy 'deploy.onnx' exports and reloads" in passed
    assert "deploy 'deploy.int8' exports and reloads" in passed
    assert "deploy 'deploy.container' exports and reloads" in passed  # without a run: the model artifact only


def test_plugin_module_imports_no_heavy_library() -> None:
    heavy = "('torch', 'onnx', 'onnxruntime', 'fastapi')"
    code = f"import sys, engine_deploy.plugin; print(sorted(m for m in {heavy} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


@pytest.mark.parametrize("target", ["torchscript", "export", "onnx", "int8"])
def test_every_target_verifies(mlp_run: Path, tmp_path: Path, target: str) -> None:
    from engine_deploy.deploy import deploy

    manifest = deploy(mlp_run, target, out=tmp_path, timing=False)
    written = json.loads((tmp_path / "manifest.json").read_text())
    v = written["verification"]
    assert v["passed"] and v["max_abs_diff"] <= v["tolerance"]
    assert v["split"] == "test" and v["samples"] == 120  # 20% of 600: real test inputs, last batch smaller
    assert written["input"] == {"name": "input", "shape": ["batch", 12], "dtype": "float32", "dynamic_batch": True}
    assert written["class_names"] == [f"class_{i}" for i in range(6)]
    assert set(written["preprocessing"]) >= {"mean", "std"}
    assert written["versions"]["engine-deploy"] and written["versions"]["engine"]
    assert (tmp_path / written["artifact"]).is_file()
    assert v["metric"]["name"] == "test/accuracy" and v["metric"]["eager"] > 0.5
    if target == "int8":
        report = v["target_report"]
        assert report["quantized_layers"] == 2 and report["weights_bytes"]["int8"] > 0
        assert abs(v["metric"]["change"]) < 0.05
    else:
        assert v["top1_agreement"] == 1.0 and v["metric"]["change"] == 0
    assert manifest["out_dir"] == str(tmp_path)


def test_deploy_command_reports_parity_latency_and_writes_default_dir(cli: Any, mlp_run: Path) -> None:
    r = cli("deploy", str(mlp_run), "--target", "onnx", "--opset", "17", "-o", "threads=1")
    assert r.returncode == 0, r.stderr
    for text in ("max abs diff", "test/accuracy", "batch 1", "batch 32", "eager p50", "verified:"):
        assert text in r.stdout
    manifest = json.loads((mlp_run / "deploy" / "onnx" / "manifest.json").read_text())
    assert manifest["options"]["opset"] == 17
    lat = manifest["verification"]["latency_ms"]
    assert lat["batch1"]["artifact"]["p50_ms"] > 0 and lat["batch32"]["eager"]["p95_ms"] > 0


def test_deploying_leaves_the_callers_thread_count(mlp_run: Path, tmp_path: Path) -> None:
    """A deploy step inside a longer process (a pipeline, a bench) must not leave torch at 1 thread."""
    import torch
    from engine_deploy.deploy import VerificationError, deploy

    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        deploy(mlp_run, "onnx", out=tmp_path / "ok", timing=False, threads=1)
        assert torch.get_num_threads() == 2
        with pytest.raises(VerificationError):
            deploy(mlp_run, "int8", out=tmp_path / "bad", options={"tolerance": 1e-9}, timing=False, threads=1)
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(before)


def test_failed_verification_exits_1_and_keeps_the_evidence(mlp_run: Path, tmp_path: Path) -> None:
    from engine_deploy.deploy import VerificationError, deploy

    with pytest.raises(VerificationError, match="differs from eager"):
        deploy(mlp_run, "int8", out=tmp_path, options={"tolerance": 1e-9}, timing=False)
    assert VerificationError.exit_code == 1
    assert json.loads((tmp_path / "manifest.json").read_text())["verification"]["passed"] is False


def test_bad_deploy_requests(mlp_run: Path, tmp_path: Path) -> None:
    from engine_deploy.deploy import deploy

    with pytest.raises(ConfigError, match="did you mean 'onnx'"):
        deploy(mlp_run, "onxx", out=tmp_path)
    with pytest.raises(ConfigError, match="opset"):
        deploy(mlp_run, "onnx", out=tmp_path, options={"opset": 3})
    with pytest.raises(ConfigError, match="unknown parameter"):
        deploy(mlp_run, "onnx", out=tmp_path, options={"opsett": 17})
    with pytest.raises(ConfigError, match="layers"):
        deploy(mlp_run, "int8", out=tmp_path, options={"layers": ["conv"]})
    with pytest.raises(EngineError, match="not found"):
        deploy(tmp_path / "nope", "onnx")


def test_run_without_checkpoint_is_one_clear_line(cli: Any, mlp_run: Path, tmp_path: Path) -> None:
    empty = tmp_path / "run"
    empty.mkdir()
    (empty / "config.yaml").write_text((mlp_run / "config.yaml").read_text())
    (empty / "summary.json").write_text('{"status": "failed"}')
    for args in (["deploy", str(empty), "--target", "onnx"], ["predict", str(empty), "x.json"], ["serve", str(empty)]):
        r = cli(*args)
        assert r.returncode == 2, r.stderr
        assert "has no checkpoint" in r.stderr and "Traceback" not in r.stderr
        assert r.stderr.count("\n") <= 2


@pytest.mark.slow
def test_missing_onnx_says_what_to_install(mlp_run: Path, tmp_path: Path) -> None:
    """With onnx/onnxruntime unimportable the plugin still lists, and the onnx target names the extra."""
    block = tmp_path / "block"
    block.mkdir()
    for name in ("onnx", "onnxruntime", "onnxscript"):  # shadow the installed packages with unimportable ones
        (block / name).mkdir()
        (block / name / "__init__.py").write_text(
            f'raise ModuleNotFoundError("No module named {name!r}", name={name!r})\n'
        )
    env = {"PYTHONPATH": os.pathsep.join([str(block), os.environ.get("PYTHONPATH", "")])}
    r = run_cli("components", "list", "--kind", "deploy", env=env)
    assert r.returncode == 0 and "deploy.onnx" in r.stdout and "deploy.int8" in r.stdout
    r = run_cli("deploy", str(mlp_run), "--target", "onnx", "--out", str(tmp_path / "o"), env=env)
    assert r.returncode == 2
    assert "pip install 'engine-deploy[onnx]'" in r.stderr and "Traceback" not in r.stderr


def test_help_texts(cli: Any) -> None:
    for cmd in ("deploy", "predict", "serve"):
        shown = cli(cmd, "--help")
        assert shown.returncode == 0 and "examples:" in shown.stdout
