"""A run directory is data: nothing in it runs code, and nothing it records leads out of it.

A checkpoint that would run code when unpickled (it writes a marker file) is planted on every
path the engine loads weights from; the marker must never appear, and each command must end in
one line naming the file, exit 2.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

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


class Out:
    """What a command run in this process returned and printed (like ``subprocess.CompletedProcess``)."""

    def __init__(self, returncode: int, stdout: str, stderr: str) -> None:
        self.returncode, self.stdout, self.stderr = returncode, stdout, stderr


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]):
    """``cli(*args)``: the ``engine`` command in this process (no interpreter start-up to pay)."""
    from engine._cli.main import main

    def run(*args: str) -> Out:
        capsys.readouterr()
        code = main(list(args))
        captured = capsys.readouterr()
        return Out(code, captured.out, captured.err)

    return run


def _refused(out: Any, marker: Path, names: str) -> None:
    assert not marker.exists(), "code from a checkpoint ran"
    assert out.returncode == 2, out.stderr[-2000:]
    assert names in out.stderr and "Traceback" not in out.stderr, out.stderr[-2000:]


def _has_deploy_plugin() -> bool:
    import engine

    return engine.get_registry().manager.is_ok("deploy")


@pytest.mark.parametrize(
    ("planted", "command"),
    [
        ("best.ckpt", ["evaluate", "{run}"]),
        ("last.ckpt", ["evaluate", "{run}", "--checkpoint", "last"]),
        ("best.ckpt", ["evaluate", "{run}", "{good}", "--ensemble"]),
        ("best.ckpt", ["run", *TINY, "model.init_from={run}", "run.dir={tmp}"]),
        ("best.ckpt", ["run", *TINY, "task=distill", "task.teacher={run}", "run.dir={tmp}"]),
        ("last.ckpt", ["run", "--resume", "{run}"]),  # (best.ckpt too: the newest one is named)
    ],
)
def test_a_planted_pickle_never_runs(good: Path, tmp_path: Path, cli, planted: str, command: list[str]) -> None:
    run = _copy(good, tmp_path)
    marker = tmp_path / "marker"
    plant(run / "checkpoints" / planted, marker)
    if command[:2] == ["run", "--resume"]:
        plant(run / "checkpoints" / "best.ckpt", marker)  # no safe checkpoint to fall back on
    args = [a.format(run=run, good=good, tmp=tmp_path / "out") for a in command]
    _refused(cli(*args), marker, ".ckpt" if "--resume" in command else planted)


def test_an_init_from_file_is_loaded_as_data(good: Path, tmp_path: Path, cli) -> None:
    marker = tmp_path / "marker"
    evil = plant(tmp_path / "weights.ckpt", marker)
    _refused(cli("run", *TINY, f"model.init_from={evil}", f"run.dir={tmp_path}"), marker, "weights.ckpt")
    # the run's own model.safetensors is the safe way to hand weights on
    weights = good / "model.safetensors"
    assert weights.is_file()
    out = cli("run", *TINY, f"model.init_from={weights}", f"run.dir={tmp_path}", "run.name=ft")
    assert out.returncode == 0, out.stderr
    assert "loaded" in out.stderr and "model.safetensors" in out.stderr


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
            torch.save({{"state_dict": Evil()}}, trainer.checkpoint_callback.best_model_path)

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
        out = cli("evaluate", str(run))
        assert out.returncode == 2 and "outside the run directory" in out.stderr and "summary.json" in out.stderr
    summary = json.loads((good / "summary.json").read_text())
    assert summary["best_checkpoint"] == "checkpoints/best.ckpt" and summary["weights"] == "model.safetensors"
    assert "run_dir" not in summary
    environment = json.loads((good / "environment.json").read_text())
    assert environment["command"][0] == "engine"


@pytest.mark.skipif(not _has_deploy_plugin(), reason="the deploy plugin is not installed")
def test_deploy_predict_and_serve_load_as_data(good: Path, tmp_path: Path, env, cli) -> None:
    run = _copy(good, tmp_path)
    marker = tmp_path / "marker"
    plant(run / "checkpoints" / "best.ckpt", marker)
    sample = tmp_path / "x.json"
    sample.write_text(json.dumps([[0.0] * 32]))
    _refused(cli("deploy", str(run), "--target", "torchscript"), marker, "best.ckpt")
    _refused(cli("predict", str(run), str(sample)), marker, "best.ckpt")
    engine_exe = Path(sys.executable).with_name("engine")
    served = subprocess.run(
        [str(engine_exe), "serve", str(run), "--port", "0"],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **env},
    )
    _refused(served, marker, "best.ckpt")
    # a manifest naming an artifact outside its directory
    deployed = cli("deploy", str(good), "--target", "torchscript", "--out", str(tmp_path / "d"), "--no-timing")
    assert deployed.returncode == 0, deployed.stderr
    manifest = json.loads((tmp_path / "d" / "manifest.json").read_text())
    assert not Path(manifest["checkpoint"]).is_absolute() and "run" not in manifest
    for name in ("../model.pt", str(tmp_path / "d" / manifest["artifact"])):
        (tmp_path / "d" / "manifest.json").write_text(json.dumps({**manifest, "artifact": name}))
        out = cli("predict", str(good), str(sample), "--artifact", str(tmp_path / "d"))
        assert out.returncode == 2 and "not a file of that directory" in out.stderr, out.stderr


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
    out = cli("evaluate", str(run))
    assert out.returncode == 2 and message in out.stderr and "config.yaml" in out.stderr, out.stderr[-1500:]
    assert "Traceback" not in out.stderr


def test_a_config_yaml_with_shorthand_names_still_opens(good: Path, tmp_path: Path, cli) -> None:
    import yaml

    run = _copy(good, tmp_path)
    cfg = yaml.safe_load((run / "config.yaml").read_text())
    cfg["optimizer"] = "core.adamw"  # `optimizer: core.adamw`, written by hand
    (run / "config.yaml").write_text(yaml.safe_dump(cfg))
    assert cli("evaluate", str(run)).returncode == 0


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("model.init_from=~nosuchuser-xyz/run", "no such user"),
        ("run.name=" + "x" * 300, "File name too long"),
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
