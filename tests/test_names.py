"""Names as users type them: runs by the name `engine runs list` prints, commands and keys with a did-you-mean."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

import engine

TWIN = """
from engine import Recipe, hookimpl


@hookimpl
def engine_recipes():
    return [Recipe("twin", {"model": {"name": "mlp"}, "data": {"name": "synthetic"}}, "one of two")]
"""


@pytest.fixture(autouse=True)
def _here(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("ENGINE_RUNS_DIR", raising=False)
    return tmp_path


def _fake_run(run_dir: Path, config: dict[str, Any] | None = None) -> Path:
    (run_dir / "checkpoints").mkdir(parents=True)
    (run_dir / "config.yaml").write_text(yaml.safe_dump(config or {"task": {"name": "core.supervised"}}))
    (run_dir / "summary.json").write_text('{"status": "completed"}')
    (run_dir / "checkpoints" / "best.ckpt").write_bytes(b"")
    return run_dir


def test_a_run_is_found_by_its_name_in_the_runs_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    run = _fake_run(tmp_path / "runs" / "mlp-synthetic-1")
    assert engine.open_run("mlp-synthetic-1").path == Path("runs/mlp-synthetic-1")
    assert engine.open_run(str(run)).path == run
    monkeypatch.setenv("ENGINE_RUNS_DIR", str(tmp_path / "elsewhere"))  # where `runs list` looks, too
    _fake_run(tmp_path / "elsewhere" / "other")
    assert engine.open_run("other").path == tmp_path / "elsewhere" / "other"


def test_a_missing_run_suggests_the_nearest_name_in_the_runs_directory(tmp_path: Path) -> None:
    _fake_run(tmp_path / "runs" / "mlp-synthetic-1")
    with pytest.raises(engine.EngineError) as err:
        engine.open_run("mlp-synthetic-2")
    assert "run directory not found: mlp-synthetic-2 — did you mean 'runs/mlp-synthetic-1'?" in err.value.message


def test_a_checkpoint_given_for_a_run_names_its_run(cli: Any, tmp_path: Path) -> None:
    run = _fake_run(tmp_path / "runs" / "a")
    with pytest.raises(engine.EngineError) as err:
        engine.open_run(run / "checkpoints" / "best.ckpt")
    assert f"is a checkpoint of the run {run}, not a run directory" in err.value.message
    out = cli("run", "--resume", str(run / "checkpoints" / "best.ckpt"), "--dry-run")
    assert out.returncode == 2 and "is a checkpoint of the run" in out.stderr


def test_resume_takes_a_run_name(cli: Any, tmp_path: Path) -> None:
    planned = cli("run", "model=mlp", "data=synthetic", "--dry-run")
    assert planned.returncode == 0, planned.stderr
    (tmp_path / "runs" / "mine").mkdir(parents=True)
    (tmp_path / "runs" / "mine" / "config.yaml").write_text(planned.stdout)
    out = cli("run", "--resume", "mine", "--dry-run")
    assert out.returncode == 0, out.stderr
    missing = cli("run", "--resume", "mien", "--dry-run")
    assert missing.returncode == 2 and "did you mean 'runs/mine'?" in missing.stderr


def test_runs_dir_precedence_override_then_config_then_environment(
    cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def run_dir(*args: str) -> str:
        out = cli("run", "model=mlp", "data=synthetic", *args, "--dry-run")
        assert out.returncode == 0, out.stderr
        return yaml.safe_load(out.stdout)["run"]["dir"]

    assert run_dir() == "runs"
    monkeypatch.setenv("ENGINE_RUNS_DIR", "/tmp/engine-runs-env")
    assert run_dir() == "/tmp/engine-runs-env"
    (tmp_path / "c.yaml").write_text("run: {dir: from-file}\n")
    assert run_dir("-c", "c.yaml") == "from-file"
    assert run_dir("-c", "c.yaml", "run.dir=from-override") == "from-override"


def test_a_mistyped_command_gets_a_did_you_mean(cli: Any) -> None:
    out = cli("rn")
    assert out.returncode == 2 and "did you mean 'run'" in out.stderr
    out = cli("components", "lst")
    assert out.returncode == 2 and "did you mean 'list'?" in out.stderr


def test_debug_is_accepted_after_the_command(cli: Any) -> None:
    out = cli("components", "list", "--kind", "optimizer", "--debug")
    assert out.returncode == 0, out.stderr
    assert "core.adamw" in out.stdout


def test_a_section_key_given_alone_suggests_its_section(cli: Any) -> None:
    out = cli("run", "model=mlp", "data=synthetic", "max_epochs=3", "--dry-run")
    assert out.returncode == 2 and "did you mean 'trainer.max_epochs'?" in out.stderr


def test_an_ambiguous_recipe_suggests_the_plugin_slash_name_form(cli: Any, plugin_site: Any) -> None:
    plugin_site("alpha", TWIN)
    plugin_site("beta", TWIN)
    out = cli("run", "twin", "--dry-run")
    assert out.returncode == 2 and "alpha/twin, beta/twin" in out.stderr
    assert "(plugin/name)" in out.stderr and "plugin.name" not in out.stderr
