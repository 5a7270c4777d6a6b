"""``engine pipeline``: stages in order into one directory; skip, rerun and resume on a rerun; dry run; failures.

The pipelines here use the core's components only, plus a small test plugin (``pipetest``) with a
config section naming a run directory (``uses.run``, checked like ``model.init_from``) and a step kind
(``note``), so references, planned runs and steps are exercised without other first-party plugins.
"""

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

import engine

QUIET = {"max_epochs": 1, "enable_progress_bar": False, "enable_model_summary": False}

PIPETEST = """
from engine import Component, Section, hookimpl

@hookimpl
def engine_config_sections():
    return [Section("uses", "engine_pipetest_targets:Uses", "A run this one uses", optional=True,
                    check="engine_pipetest_targets:check_uses")]

@hookimpl
def engine_pipeline_steps():
    return [Component("note", "engine_pipetest_targets:note", "Write a note about a run",
                      check="engine_pipetest_targets:check_note")]
"""

TARGETS = """
import json
from dataclasses import dataclass
from pathlib import Path

from engine.runs import check_run_dir


@dataclass
class Uses:
    '''Args:
        run: a run directory this run uses.'''

    run: str | None = None


def check_uses(values, where, config):
    if values["run"] is not None:
        check_run_dir(values["run"], f"{where}.run")


def note(out: Path, run: str, text: str = "hello", fail: bool = False) -> dict:
    '''Write ``text`` and the run's primary metric into ``out/note.txt``.'''
    if fail:
        raise RuntimeError("simulated step failure")
    summary = json.loads((Path(run) / "summary.json").read_text())
    primary = summary["primary_metric"]
    (out / "note.txt").write_text(f"{text}: {primary['value']}")
    return {"metrics": {primary["name"]: primary["value"], "chars": len(text)}, "primary_metric": primary,
            "file": "note.txt"}


def check_note(values, where, config):
    check_run_dir(values["run"], f"{where}.run")
    return {**values, "text": values["text"].strip()}
"""


@pytest.fixture(autouse=True)
def pipetest(plugin_site: Any) -> None:
    plugin_site("pipetest", PIPETEST, extra={"engine_pipetest_targets": TARGETS})


def _stage(*overrides: str, **sections: Any) -> dict[str, Any]:
    model = {"name": "mlp", "hidden": [8], **sections.pop("model", {})}
    base = {"model": model, "data": {"name": "synthetic", "num_samples": 200}, "trainer": dict(QUIET)}
    return {**base, **sections, "overrides": list(overrides)}


def _write(tmp_path: Path, stages: dict[str, Any], name: str = "ft") -> Path:
    file = tmp_path / f"{name}.yaml"
    file.write_text(yaml.safe_dump({"stages": stages}, sort_keys=False))
    return file


def _two(tmp_path: Path, pre: tuple[str, ...] = (), fine: tuple[str, ...] = ()) -> Path:
    """pre -> fine, fine naming pre's run directory (``uses.run``)."""
    return _write(tmp_path, {"pre": _stage(*pre), "fine": _stage(*fine, uses={"run": "${stages.pre}"})})


def _summary(run_dir: Path) -> dict[str, Any]:
    return json.loads((run_dir / "summary.json").read_text())


def _no_training(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("a stage trained")

    monkeypatch.setattr(engine, "train", refuse)


def test_two_stages_run_into_one_directory_and_a_rerun_skips_them(
    cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    file, d = _two(tmp_path), tmp_path / "p"
    out = cli("pipeline", str(file), "--dir", str(d), "-q")
    assert out.returncode == 0, out.stderr
    pre, fine = d / "stages/pre", d / "stages/fine"
    assert _summary(pre)["status"] == _summary(fine)["status"] == "completed"
    assert yaml.safe_load((fine / "config.yaml").read_text())["uses"]["run"] == str(pre)
    state = json.loads((d / "pipeline.json").read_text())
    assert state["status"] == "completed" and list(state["stages"]) == ["pre", "fine"]
    assert state["stages"]["fine"]["metrics"] == _summary(fine)["metrics"]
    assert "pre" in out.stdout and "completed" in out.stdout and "test/accuracy=" in out.stdout

    _no_training(monkeypatch)
    out = cli("pipeline", str(file), "--dir", str(d), "-q")
    assert out.returncode == 0, out.stderr
    assert (
        "skipped: pre (completed, same config)" in out.stderr and "skipped: fine (completed, same config)" in out.stderr
    )
    assert "training" not in out.stderr and sorted(p.name for p in (d / "stages").iterdir()) == ["fine", "pre"]

    moved = tmp_path / "moved"
    d.rename(moved)  # references are recorded as ${stages.NAME}: a moved pipeline is still done
    out = cli("pipeline", str(file), "--dir", str(moved), "-q")
    assert out.returncode == 0 and "skipped: fine (completed, same config)" in out.stderr, out.stderr
    moved.rename(d)

    (tmp_path / "elsewhere").mkdir()
    listed = cli("runs", "list", "--dir", str(tmp_path))
    assert listed.returncode == 0
    assert [line.split()[0] for line in listed.stdout.splitlines()[1:]] == ["p/pre", "p/fine"]  # grouped, in order
    listed = cli("runs", "list", "--dir", str(d))
    rows = [line.split() for line in listed.stdout.splitlines()[1:]]
    assert [(r[0], r[3]) for r in rows] == [("pre", "completed"), ("fine", "completed")]
    collection = engine.run_collection(d)
    assert collection is not None and collection.kind == "pipeline"
    assert collection.members == [("pre", pre), ("fine", fine)] and collection.figures["status"] == "completed"
    compared = cli("runs", "compare", str(d))
    assert compared.returncode == 0 and "p/pre" in compared.stdout and "p/fine" in compared.stdout


def test_changing_a_stage_reruns_it_and_every_stage_after_it(cli: Any, tmp_path: Path) -> None:
    d = tmp_path / "p"
    assert cli("pipeline", str(_two(tmp_path)), "--dir", str(d), "-q").returncode == 0
    first_pre = _summary(d / "stages/pre")["started"]

    out = cli("pipeline", str(_two(tmp_path, fine=("optimizer.lr=0.01",))), "--dir", str(d), "-q")
    assert out.returncode == 0, out.stderr
    assert "skipped: pre (completed, same config)" in out.stderr and "rerun: fine (config changed" in out.stderr
    assert _summary(d / "stages/pre")["started"] == first_pre
    assert len(list((d / "stages").glob("fine.old-*"))) == 1  # the previous run is kept

    out = cli("pipeline", str(_two(tmp_path, ("seed=1",), ("optimizer.lr=0.01",))), "--dir", str(d), "-q")
    assert out.returncode == 0, out.stderr
    assert "rerun: pre (config changed" in out.stderr and "rerun: fine (an earlier stage changed" in out.stderr
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
    cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, plugin_site: Any
) -> None:
    plugin_site("crash", CRASH)
    file, d = _two(tmp_path, fine=("trainer.max_epochs=2",)), tmp_path / "p"
    monkeypatch.setenv("CRASH_STAGE", "fine")
    out = cli("pipeline", str(file), "--dir", str(d), "-q")
    assert out.returncode == 1
    assert "error: stage 'fine' failed: RuntimeError: simulated crash" in out.stderr
    state = json.loads((d / "pipeline.json").read_text())
    assert state["status"] == "failed"
    assert [s["status"] for s in state["stages"].values()] == ["completed", "failed"]

    monkeypatch.delenv("CRASH_STAGE")
    out = cli("pipeline", str(file), "--dir", str(d), "-q")
    assert out.returncode == 0, out.stderr
    assert "skipped: pre" in out.stderr and f"resuming: fine (failed) in {d / 'stages/fine'}" in out.stderr
    assert "resume: continuing" in out.stderr
    summary = _summary(d / "stages/fine")
    assert summary["status"] == "completed" and summary["epochs"] == 2
    out = cli("pipeline", str(file), "--dir", str(d), "-q")
    assert out.returncode == 0 and "skipped: fine (completed, same config)" in out.stderr, out.stderr


def test_an_interrupted_stage_resumes(cli: Any, tmp_path: Path) -> None:
    file, d = _two(tmp_path), tmp_path / "p"
    assert cli("pipeline", str(file), "--dir", str(d), "-q").returncode == 0
    gone = subprocess.Popen([sys.executable, "-c", ""])
    gone.wait()  # a process that no longer exists: what a kill leaves behind
    for path, record in ((d / "stages/fine/summary.json", None), (d / "pipeline.json", "fine")):
        data = json.loads(path.read_text())
        data.update(status="running", pid=gone.pid)
        if record:
            data["stages"][record]["status"] = "running"
        path.write_text(json.dumps(data))
    listed = cli("runs", "list", "--dir", str(d))
    assert "interrupted" in listed.stdout.splitlines()[2]

    out = cli("pipeline", str(file), "--dir", str(d), "-q")
    assert out.returncode == 0, out.stderr
    assert "skipped: pre" in out.stderr and "resuming: fine (interrupted)" in out.stderr
    assert _summary(d / "stages/fine")["status"] == "completed"
    assert json.loads((d / "pipeline.json").read_text())["status"] == "completed"


def test_dry_run_validates_every_stage_before_any_trains(
    cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    _no_training(monkeypatch)
    out = cli("pipeline", str(_two(tmp_path)), "--dry-run")
    assert out.returncode == 0, out.stderr
    assert "train (not run yet)" in out.stdout and str(Path("pipelines/ft/stages/fine")) in out.stdout
    assert "core.supervised: core.mlp on core.synthetic, 1 epoch (from pre)" in out.stdout
    assert "# stage 'fine': filled from them: task.problem, task.num_classes, model.in_features" in out.stderr
    assert "every stage is valid" in out.stderr and not (tmp_path / "pipelines").exists()

    for fine, message in (
        (("model.hiden=[8]",), "stage 'fine': unknown parameter 'model.hiden' for model 'core.mlp' — did you mean"),
        (("data.batch_size=0",), "stage 'fine': data.batch_size must be int >= 1, got 0"),
        (("run.name=x",), "stage 'fine': run.dir and run.name are the pipeline's"),
    ):
        for extra in (["--dry-run"], []):
            out = cli("pipeline", str(_two(tmp_path, fine=fine)), *extra)
            assert out.returncode == 2 and message in out.stderr, out.stderr
        assert not (tmp_path / "pipelines").exists()  # stage 'pre' never trained

    out = cli("pipeline", str(_write(tmp_path, {"pre": _stage(), "fine": {"modle": {"hidden": [4]}}})), "--dry-run")
    assert out.returncode == 2 and "stage 'fine': unknown key 'modle' — did you mean 'model'?" in out.stderr
    assert "note" in out.stderr.split("step kinds, declared by plugins: ")[1]
    out = cli("pipeline", str(tmp_path / "absent.yaml"))
    assert out.returncode == 2 and "pipeline file not found" in out.stderr

    busy = tmp_path / "pipelines/ft"
    busy.mkdir(parents=True)
    state = {"status": "running", "pid": os.getppid(), "host": socket.gethostname(), "stages": {}}
    (busy / "pipeline.json").write_text(json.dumps(state))
    out = cli("pipeline", str(_two(tmp_path)), "--dry-run")
    assert out.returncode == 2 and f"is running in process {os.getppid()}" in out.stderr, out.stderr


@pytest.mark.parametrize(
    ("reference", "message"),
    [
        ("${stages.prex}", "stage 'fine': unknown stage 'prex' in '${stages.prex}' — did you mean 'pre'?"),
        ("${stage.pre}", "did you mean '${stages.pre}'?"),
        ("${stages.fine}", "refers to the stage itself"),
        ("${stages.last}", "refers to stage 'last', which comes later"),
    ],
)
def test_a_bad_stage_reference_is_refused_at_dry_run(cli: Any, tmp_path: Path, reference: str, message: str) -> None:
    stages = {"pre": _stage(), "fine": _stage(uses={"run": reference}), "last": _stage()}
    out = cli("pipeline", str(_write(tmp_path, stages)), "--dir", str(tmp_path / "p"), "--dry-run")
    assert out.returncode == 2 and message in out.stderr, out.stderr


def test_a_step_stage_runs_a_plugins_step_on_an_earlier_stage(
    cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    stages = {"fine": _stage(), "note": {"note": {"run": "${stages.fine}", "text": " hi "}}}
    file, d = _write(tmp_path, stages), tmp_path / "p"
    out = cli("pipeline", str(file), "--dir", str(d), "--dry-run")
    assert out.returncode == 0, out.stderr
    assert "note fine (text=hi)" in out.stdout and "note (not run yet)" in out.stdout  # the check's values

    out = cli("pipeline", str(file), "--dir", str(d), "-q")
    assert out.returncode == 0, out.stderr
    assert f"note step: note -> {d / 'stages/note'}" in out.stderr
    accuracy = _summary(d / "stages/fine")["primary_metric"]["value"]
    assert (d / "stages/note/note.txt").read_text() == f"hi: {accuracy}"
    record = json.loads((d / "pipeline.json").read_text())["stages"]["note"]
    assert record["status"] == "completed" and record["kind"] == "note" and record["step"] == "pipetest.note"
    assert record["metrics"] == {"test/accuracy": accuracy, "chars": 2} and record["result"] == {"file": "note.txt"}
    assert f"test/accuracy={accuracy:.4f}" in out.stdout.splitlines()[2]
    listed = cli("runs", "list", "--dir", str(d))
    assert [r.split()[0] for r in listed.stdout.splitlines()[1:]] == ["fine", "note"]

    _no_training(monkeypatch)
    out = cli("pipeline", str(file), "--dir", str(d), "-q")
    assert out.returncode == 0 and "skipped: note (completed, same config)" in out.stderr, out.stderr
    for f in (d / "stages/note").iterdir():
        f.unlink()  # an empty directory: not done, whatever pipeline.json says
    out = cli("pipeline", str(file), "--dir", str(d), "-q")
    assert out.returncode == 0 and "note step: note" in out.stderr, out.stderr
    stages["note"]["note"]["text"] = "other"
    out = cli("pipeline", str(_write(tmp_path, stages)), "--dir", str(d), "-q")
    assert out.returncode == 0 and "rerun: note (config changed" in out.stderr, out.stderr

    stages["note"]["note"]["fail"] = True
    out = cli("pipeline", str(_write(tmp_path, stages)), "--dir", str(d), "-q")
    assert out.returncode == 1 and "stage 'note' failed: RuntimeError: simulated step failure" in out.stderr


@pytest.mark.parametrize(
    ("stage", "message"),
    [
        ({"nots": {"run": "${stages.fine}"}}, "unknown key 'nots' — did you mean 'note'?"),
        (
            {"note": {"run": "${stages.fine}", "txt": "a"}},
            "unknown parameter 'note.txt' for note() — did you mean 'text'?",
        ),
        ({"note": {"text": "a"}}, "note() needs parameter 'run' (str)"),
        ({"note": {"run": "${stages.fine}", "fail": "yes"}}, "note.fail must be bool"),
        ({"note": {"run": str(Path("/nowhere"))}}, "note.run: /nowhere does not exist"),
        ({"note": {"run": "${stages.fine}"}, "seed": 1}, "a note step holds only `note:`, not seed"),
        ({"note": "${stages.fine}"}, "note: must be a mapping of the step's keys"),
    ],
)
def test_a_step_is_checked_before_anything_runs(cli: Any, tmp_path: Path, stage: Any, message: str) -> None:
    file = _write(tmp_path, {"fine": _stage(), "step": stage})
    out = cli("pipeline", str(file), "--dir", str(tmp_path / "p"))
    assert out.returncode == 2 and f"stage 'step': {message}" in out.stderr, out.stderr
    assert not (tmp_path / "p").exists()
