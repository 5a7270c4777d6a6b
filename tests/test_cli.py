"""The `engine` command as a user meets it: help, listings, errors, a run, DDP."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

import engine
from engine.testing import run_cli

QUIET = ["trainer.enable_progress_bar=false", "trainer.enable_model_summary=false"]


def test_help_lists_commands_and_does_not_import_torch() -> None:
    out = run_cli("--help")
    assert out.returncode == 0
    for command in ("plugins", "components", "run"):
        assert command in out.stdout
    code = "import sys\nfrom engine._cli.main import main\nmain(['plugins', 'list'])\nprint('torch' in sys.modules)"
    probe = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert probe.stdout.strip().splitlines()[-1] == "False"


def test_plugins_and_components_listing() -> None:
    out = run_cli("plugins", "list")
    assert out.returncode == 0 and "core" in out.stdout and "ok" in out.stdout
    out = run_cli("plugins", "info", "core")
    assert out.returncode == 0 and "core.mlp" in out.stdout
    out = run_cli("components", "list", "--kind", "optimizer")
    assert out.returncode == 0 and "core.adamw" in out.stdout and "core.mlp" not in out.stdout
    out = run_cli("components", "list", "*plateau*")
    assert "core.reduce_on_plateau" in out.stdout
    out = run_cli("components", "show", "mlp")
    assert out.returncode == 0
    for text in ("model.hidden", "list[int >= 1]", "[128, 128]", "required", "width of each hidden layer"):
        assert text in out.stdout, text
    out = run_cli("components", "show", "core/mlp-synthetic")
    assert out.returncode == 0 and "num_classes: 6" in out.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["run", "model=mlpp", "data=synthetic"], "unknown model 'mlpp' — did you mean 'mlp'?"),
        (["run", "model=mlp", "data=synthetic", "model.hiden=[8]"], "did you mean 'hidden'?"),
        (["run", "model=mlp", "data=synthetic", "trainer.max_epoch=1"], "did you mean 'max_epochs'"),
        (["run", "model=mlp", "data=synthetic", "optimizer.lr=fast"], "optimizer.lr must be float"),
        (["components", "show", "mlpp"], "no component named 'mlpp' — did you mean 'mlp'"),
        (["components", "list", "--kind", "modle"], "unknown kind 'modle' — did you mean 'model'?"),
        (["plugins", "info", "cor"], "unknown plugin 'cor' — did you mean 'core'"),
        (["run", "--resume", "/nonexistent/run"], "run directory not found"),
        (["--disable", "core", "plugins", "list"], "the core plugin cannot be disabled"),
    ],
)
def test_mistakes_exit_2_with_one_clear_message(args: list[str], message: str) -> None:
    out = run_cli(*args)
    assert out.returncode == 2, out.stderr
    assert message in out.stderr
    assert "Traceback" not in out.stderr


def test_debug_shows_the_traceback() -> None:
    out = run_cli("--debug", "run", "model=mlpp", "data=synthetic")
    assert out.returncode != 0 and "Traceback" in out.stderr and "ConfigError" in out.stderr


def test_broken_plugin_shown_and_others_work(plugin_site) -> None:
    plugin_site("bad", "import nonexistent_dependency_xyz\n", dist="engine-bad", version="2.0")
    out = run_cli("plugins", "list")
    assert out.returncode == 0
    assert "broken" in out.stdout and "engine-bad" in out.stdout and "nonexistent_dependency_xyz" in out.stdout
    assert run_cli("run", "model=mlp", "data=synthetic", "--dry-run").returncode == 0
    disabled = run_cli("--disable", "bad", "plugins", "list").stdout
    assert "disabled" in disabled and "nonexistent_dependency_xyz" not in disabled


def test_plugin_adds_a_command(plugin_site) -> None:
    site = plugin_site(
        "hello",
        """
from engine import hookimpl

@hookimpl
def engine_add_commands(subparsers):
    p = subparsers.add_parser("hello", help="say hello")
    p.add_argument("name")
    p.set_defaults(handler="hello_impl:main")
""",
    )
    (site / "hello_impl.py").write_text("def main(args):\n    print('hello', args.name)\n    return 3\n")
    assert "say hello" in run_cli("--help").stdout
    out = run_cli("hello", "world")
    assert out.returncode == 3 and out.stdout.strip() == "hello world"


@pytest.mark.slow
def test_run_dry_run_resume_and_reopen(tmp_path: Path) -> None:
    args = [
        "run",
        "core/mlp-synthetic",
        "data.num_samples=400",
        "model.hidden=[16]",
        "trainer.max_epochs=2",
        "scheduler=step",  # a schedule without a length: the run can be extended (cosine's is refused)
        f"run.dir={tmp_path}",
        "run.name=demo",
        *QUIET,
    ]
    dry = run_cli(*args, "--dry-run")
    assert dry.returncode == 0 and "name: core.mlp" in dry.stdout and not (tmp_path / "demo").exists()
    out = run_cli(*args)
    assert out.returncode == 0, out.stderr
    assert f"run directory: {tmp_path / 'demo'}" in out.stdout and "test/accuracy" in out.stdout
    again = run_cli(*args)
    assert again.returncode == 2 and "already exists" in again.stderr and "--resume" in again.stderr
    more = run_cli("run", "--resume", str(tmp_path / "demo"), "trainer.max_epochs=3", *QUIET)
    assert more.returncode == 0, more.stderr
    summary = json.loads((tmp_path / "demo" / "summary.json").read_text())
    assert summary["epochs"] == 3 and summary["status"] == "completed"
    assert (tmp_path / "demo" / "csv" / "1" / "metrics.csv").is_file()  # the first attempt's metrics are kept
    reopened = engine.open_run(tmp_path / "demo")  # the trained task comes back with its checkpoint's weights
    assert reopened.summary["status"] == "completed" and reopened.task().training is False


@pytest.mark.slow
def test_two_process_ddp_on_cpu(tmp_path: Path) -> None:
    out = run_cli(
        "run",
        "model=mlp",
        "data=synthetic",
        "data.num_samples=800",
        "model.hidden=[16]",
        "trainer.max_epochs=2",
        "trainer.strategy=ddp",
        "trainer.devices=2",
        "trainer.accelerator=cpu",
        f"run.dir={tmp_path / 'runs'}",
        "run.name=ddp",
        *QUIET,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert [p.name for p in (tmp_path / "runs").iterdir()] == ["ddp"]  # both ranks wrote one run directory
    summary = json.loads((tmp_path / "runs" / "ddp" / "summary.json").read_text())
    assert summary["status"] == "completed"
    # 560 training samples, batch 64, split over 2 processes: 5 steps per epoch each.
    assert summary["global_step"] == 10


def test_tables_align_and_wrap_the_last_column(monkeypatch) -> None:
    from engine._cli.console import Console, Table, styled

    monkeypatch.setenv("COLUMNS", "40")
    table = Table("name", "summary")
    table.add_row(styled("core.mlp", "green"), "a multi-layer perceptron with optional dropout and norm")
    table.add_row("x", "short")
    lines = table.lines(Console().paint)  # captured output is not a terminal: no colour codes
    assert lines[0] == "name      summary"
    assert lines[1].startswith("core.mlp  a multi-layer") and all(len(line) <= 40 for line in lines)
    assert lines[2].startswith("          ") and lines[-1] == "x         short"
