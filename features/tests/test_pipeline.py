"""``engine pipeline``: stages in order into one directory; skip, rerun and resume on a rerun; dry run; failures."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from engine.cli import main

QUIET = {"max_epochs": 1, "enable_progress_bar": False, "enable_model_summary": False}


def _stage(*overrides: str, **sections: Any) -> dict[str, Any]:
    model = {"name": "mlp", "hidden": [8], **sections.pop("model", {})}
    base = {"model": model, "data": {"name": "synthetic", "num_samples": 200}, "trainer": dict(QUIET)}
    return {**base, **sections, "overrides": list(overrides)}


def _write(tmp_path: Path, stages: dict[str, Any], name: str = "ft") -> Path:
    file = tmp_path / f"{name}.yaml"
    file.write_text(yaml.safe_dump({"stages": stages}, sort_keys=False))
    return file


def _two(tmp_path: Path, pre: tuple[str, ...] = (), fine: tuple[str, ...] = ()) -> Path:
    """pre -> fine, fine starting from pre's weights."""
    return _write(tmp_path, {"pre": _stage(*pre), "fine": _stage(*fine, model={"init_from": "${stages.pre}"})})


def _pipeline(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    capsys.readouterr()
    code = main(["pipeline", *args])
    out = capsys.readouterr()
    return code, out.out, out.err


def _summary(run_dir: Path) -> dict[str, Any]:
    return json.loads((run_dir / "summary.json").read_text())


def _no_training(monkeypatch: pytest.MonkeyPatch) -> None:
    import engine.runner

    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("a stage trained")

    monkeypatch.setattr(engine.runner, "run", refuse)


def test_two_stages_run_into_one_directory_and_a_rerun_skips_them(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    file, d = _two(tmp_path), tmp_path / "p"
    code, out, err = _pipeline(capsys, str(file), "--dir", str(d), "-q")
    assert code == 0, err
    pre, fine = d / "stages/pre", d / "stages/fine"
    assert _summary(pre)["status"] == _summary(fine)["status"] == "completed"
    assert yaml.safe_load((fine / "config.yaml").read_text())["model"]["init_from"] == str(pre)
    assert f"model.init_from: loaded 6/6 tensors from {pre}" in err
    state = json.loads((d / "pipeline.json").read_text())
    assert state["status"] == "completed" and list(state["stages"]) == ["pre", "fine"]
    assert state["stages"]["fine"]["metrics"] == _summary(fine)["metrics"]
    assert "pre" in out and "completed" in out and "test/accuracy=" in out

    _no_training(monkeypatch)
    code, out, err = _pipeline(capsys, str(file), "--dir", str(d), "-q")
    assert code == 0, err
    assert "skipped: pre (completed, same config)" in err and "skipped: fine (completed, same config)" in err
    assert "training" not in err and sorted(p.name for p in (d / "stages").iterdir()) == ["fine", "pre"]

    moved = tmp_path / "moved"
    d.rename(moved)  # references are recorded as ${stages.NAME}: a moved pipeline is still done
    code, _, err = _pipeline(capsys, str(file), "--dir", str(moved), "-q")
    assert code == 0 and "skipped: fine (completed, same config)" in err, err
    moved.rename(d)

    (tmp_path / "elsewhere").mkdir()
    assert main(["runs", "list", "--dir", str(tmp_path)]) == 0
    lines = [line.split()[0] for line in capsys.readouterr().out.splitlines()[1:]]
    assert lines == ["p/pre", "p/fine"]  # the pipeline's stages together, in stage order
    assert main(["runs", "list", "--dir", str(d)]) == 0
    rows = [line.split() for line in capsys.readouterr().out.splitlines()[1:]]
    assert [(r[0], r[3]) for r in rows] == [("pre", "completed"), ("fine", "completed")]


def test_changing_a_stage_reruns_it_and_every_stage_after_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    d = tmp_path / "p"
    assert _pipeline(capsys, str(_two(tmp_path)), "--dir", str(d), "-q")[0] == 0
    first_pre = _summary(d / "stages/pre")["started"]

    code, _, err = _pipeline(capsys, str(_two(tmp_path, fine=("optimizer.lr=0.01",))), "--dir", str(d), "-q")
    assert code == 0, err
    assert "skipped: pre (completed, same config)" in err and "rerun: fine (config changed" in err
    assert _summary(d / "stages/pre")["started"] == first_pre
    assert len(list((d / "stages").glob("fine.old-*"))) == 1  # the previous run is kept

    code, _, err = _pipeline(capsys, str(_two(tmp_path, ("seed=1",), ("optimizer.lr=0.01",))), "--dir", str(d), "-q")
    assert code == 0, err
    assert "rerun: pre (config changed" in err and "rerun: fine (an earlier stage changed" in err
    assert yaml.safe_load((d / "stages/pre/config.yaml").read_text())["seed"] == 1
    assert _summary(d / "stages/fine")["status"] == "completed"


CRASH = """
import os
from engine import hookimpl

@hookimpl
def engine_callbacks(config):
    if config["run"]["name"] != os.environ.get("CRASH_STAGE"):
        return []
    import lightning as L

    class Crash(L.Callback):
        def on_train_epoch_start(self, trainer, pl_module):
            if trainer.current_epoch == 1:
                raise RuntimeError("simulated crash")

    return [Crash()]
"""


def test_a_failing_stage_stops_with_exit_1_and_a_rerun_resumes_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, plugin_site: Any
) -> None:
    plugin_site(plugin="crash", code=CRASH)
    file, d = _two(tmp_path, fine=("trainer.max_epochs=2",)), tmp_path / "p"
    monkeypatch.setenv("CRASH_STAGE", "fine")
    code, _, err = _pipeline(capsys, str(file), "--dir", str(d), "-q")
    assert code == 1
    assert "error: stage 'fine' failed: RuntimeError: simulated crash" in err
    state = json.loads((d / "pipeline.json").read_text())
    assert state["status"] == "failed"
    assert [s["status"] for s in state["stages"].values()] == ["completed", "failed"]

    monkeypatch.delenv("CRASH_STAGE")
    code, _, err = _pipeline(capsys, str(file), "--dir", str(d), "-q")
    assert code == 0, err
    assert "skipped: pre" in err and f"resuming: fine (failed) in {d / 'stages/fine'}" in err
    assert "resume: continuing" in err
    summary = _summary(d / "stages/fine")
    assert summary["status"] == "completed" and summary["epochs"] == 2
    code, _, err = _pipeline(capsys, str(file), "--dir", str(d), "-q")
    assert code == 0 and "skipped: fine (completed, same config)" in err, err  # the resumed run is done


def test_an_interrupted_stage_resumes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    file, d = _two(tmp_path), tmp_path / "p"
    assert _pipeline(capsys, str(file), "--dir", str(d), "-q")[0] == 0
    gone = subprocess.Popen([sys.executable, "-c", ""])
    gone.wait()  # a process that no longer exists: what a kill leaves behind
    for path, record in ((d / "stages/fine/summary.json", None), (d / "pipeline.json", "fine")):
        data = json.loads(path.read_text())
        data.update(status="running", pid=gone.pid)
        if record:
            data["stages"][record]["status"] = "running"
        path.write_text(json.dumps(data))
    assert main(["runs", "list", "--dir", str(d)]) == 0
    assert "interrupted" in capsys.readouterr().out.splitlines()[2]

    code, _, err = _pipeline(capsys, str(file), "--dir", str(d), "-q")
    assert code == 0, err
    assert "skipped: pre" in err and "resuming: fine (interrupted)" in err
    assert _summary(d / "stages/fine")["status"] == "completed"
    assert json.loads((d / "pipeline.json").read_text())["status"] == "completed"


def test_dry_run_validates_every_stage_before_any_trains(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    _no_training(monkeypatch)
    code, out, err = _pipeline(capsys, str(_two(tmp_path)), "--dry-run")
    assert code == 0, err
    assert "train (not run yet)" in out and str(Path("pipelines/ft/stages/fine")) in out
    assert "# stage 'fine': filled from them: task.problem, task.num_classes, model.in_features" in err
    assert "every stage is valid" in err and not (tmp_path / "pipelines").exists()

    for fine, message in (
        (("model.hiden=[8]",), "stage 'fine': unknown parameter 'model.hiden' for model 'core.mlp' — did you mean"),
        (("data.batch_size=0",), "stage 'fine': data.batch_size must be int >= 1, got 0"),
    ):
        for extra in (["--dry-run"], []):
            code, _, err = _pipeline(capsys, str(_two(tmp_path, fine=fine)), *extra)
            assert code == 2 and message in err, err
        assert not (tmp_path / "pipelines").exists()  # stage 'pre' never trained

    distill = _stage(model={"hidden": [4]}, task={"name": "distill", "teacher": "${stages.fine}"})
    three = _write(tmp_path, {**yaml.safe_load(_two(tmp_path).read_text())["stages"], "small": distill})
    code, out, err = _pipeline(capsys, str(three), "--dry-run")  # a teacher that has not trained yet is fine
    assert code == 0 and "core.distill: core.mlp on core.synthetic, 1 epoch (from fine)" in out, err

    busy = tmp_path / "pipelines/ft"
    busy.mkdir(parents=True)
    state = {"status": "running", "pid": os.getppid(), "host": socket.gethostname(), "stages": {}}
    (busy / "pipeline.json").write_text(json.dumps(state))
    code, _, err = _pipeline(capsys, str(_two(tmp_path)), "--dry-run")
    assert code == 2 and f"is running in process {os.getppid()}" in err, err


@pytest.mark.parametrize(
    ("reference", "message"),
    [
        ("${stages.prex}", "stage 'fine': unknown stage 'prex' in '${stages.prex}' — did you mean 'pre'?"),
        ("${stage.pre}", "did you mean '${stages.pre}'?"),
        ("${stages.fine}", "refers to the stage itself"),
        ("${stages.last}", "refers to stage 'last', which comes later"),
    ],
)
def test_a_bad_stage_reference_is_refused_at_dry_run(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], reference: str, message: str
) -> None:
    stages = {"pre": _stage(), "fine": _stage(model={"init_from": reference}), "last": _stage()}
    code, _, err = _pipeline(capsys, str(_write(tmp_path, stages)), "--dir", str(tmp_path / "p"), "--dry-run")
    assert code == 2 and message in err, err


def test_a_deploy_stage_exports_an_earlier_stage(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("engine_deploy")
    pytest.importorskip("onnxruntime")
    export = {"deploy": {"run": "${stages.fine}", "target": "onnx", "samples": 32, "timing": False}}
    stages = {"pre": _stage(), "fine": _stage(model={"init_from": "${stages.pre}"}), "export": export}
    file, d = _write(tmp_path, stages), tmp_path / "p"
    code, out, err = _pipeline(capsys, str(file), "--dir", str(d), "--dry-run")
    assert code == 0 and "deploy fine to deploy.onnx" in out and "deploy (not run yet)" in out, err

    code, out, err = _pipeline(capsys, str(file), "--dir", str(d), "-q")
    assert code == 0, err
    manifest = json.loads((d / "stages/export/manifest.json").read_text())
    assert (d / "stages/export" / manifest["artifact"]).is_file()
    record = json.loads((d / "pipeline.json").read_text())["stages"]["export"]
    assert record["status"] == "completed" and record["metrics"]["passed"] is True

    code, _, err = _pipeline(capsys, str(file), "--dir", str(d), "-q")
    assert code == 0 and "skipped: export (completed, same config)" in err, err
    bad = {**stages, "export": {"deploy": {**export["deploy"], "target": "onnxx"}}}
    code, _, err = _pipeline(capsys, str(_write(tmp_path, bad)), "--dir", str(d), "--dry-run")
    assert code == 2 and "stage 'export':" in err and "did you mean" in err, err
