"""The rules of the contract: no plugin can take the engine down, one call order, resolved names.

Each test here reproduces one defect a reviewer found (issue 17, defects 1-9) and failed before
the core's contract v2.
"""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import engine
from engine._cli.main import main
from engine._config.compose import compose
from engine._config.plan import make_plan
from engine._contract.errors import ConfigError
from engine._plugins.manager import PluginManager
from engine.testing import run_cli

MODEL = """
from engine import Component, hookimpl

@hookimpl
def engine_models():
    return [Component("{model}", "engine._builtins.models:MLP", "an MLP under another name")]
"""
COMMAND = """
from engine import Component, hookimpl

@hookimpl
def engine_models():
    return [Component("net", "engine._builtins.models:MLP", "an MLP")]

@hookimpl
def engine_add_commands(subparsers):
    p = subparsers.add_parser("{command}", help="{help}")
    p.set_defaults(handler=lambda args: print("{help}") or 0)
"""
RAISES_IN_ADJUST = """
from engine import hookimpl

@hookimpl
def engine_adjust_config(config):
    raise ValueError("boom in adjust")
"""
RAISES_IN_CALLBACKS = """
from engine import hookimpl

@hookimpl
def engine_callbacks(config):
    raise RuntimeError("boom in callbacks")
"""
TINY = ["model=mlp", "data=synthetic", "data.num_samples=200", "trainer.max_epochs=1"]
QUIET = ["trainer.enable_progress_bar=false", "trainer.enable_model_summary=false"]


def _installed_earlier(site: Path, dist: str, version: str = "1.0") -> None:
    """Make ``dist`` look installed before the others (its metadata directory is older)."""
    os.utime(site / f"{dist.replace('-', '_')}-{version}.dist-info", (1_000_000, 1_000_000))


# --------------------------------------------------------------------------- defect 1: names


def test_a_second_distribution_reusing_a_plugin_name_is_refused(plugin_site, monkeypatch) -> None:
    site = plugin_site("alpha", MODEL.format(model="net"), dist="engine-alpha", module="first_alpha")
    plugin_site("alpha", MODEL.format(model="other"), dist="alpha-fork", module="second_alpha")
    _installed_earlier(site, "engine-alpha")
    listed = run_cli("plugins", "list")
    assert listed.returncode == 0, listed.stderr
    line = next(ln for ln in listed.stdout.splitlines() if ln.startswith("broken") and "alpha-fork" in ln)
    assert "engine-alpha" in line and "engine plugins uninstall alpha-fork" in line  # both named, and the fix
    manager = PluginManager()
    assert manager.plugins["alpha"].distribution == "engine-alpha"  # installed first: kept, working
    assert engine.get_registry().resolve("model", "alpha.net").distribution == "engine-alpha"
    # uninstall repairs it: by distribution name, or asking which one when the plugin name is ambiguous
    calls: list[tuple[str, ...]] = []
    monkeypatch.setattr("engine._cli.manage._pip", lambda *a: calls.append(a) or (0, ""))
    assert main(["plugins", "uninstall", "alpha-fork"]) == 0 and calls == [("uninstall", "-y", "alpha-fork")]
    assert main(["plugins", "uninstall", "alpha"]) == 2 and len(calls) == 1


def test_an_entry_point_named_core_is_refused(plugin_site) -> None:
    plugin_site("core", MODEL.format(model="mlp"), dist="engine-impostor")
    for command in (["--help"], ["plugins", "list"], ["run", "core/mlp-synthetic", "--dry-run"]):
        out = run_cli(*command)
        assert out.returncode == 0, (command, out.stderr)
    listed = run_cli("plugins", "list").stdout
    assert "engine-impostor" in listed and "the plugin name 'core' is the engine's own" in listed
    assert engine.get_registry().resolve("model", "core.mlp").distribution == "engine"


# --------------------------------------------------------------------------- defect 2: commands


def test_a_command_the_core_owns_is_refused_and_the_cli_works(plugin_site) -> None:
    plugin_site("clash", COMMAND.format(command="components", help="not the core's components"))
    assert run_cli("--help").returncode == 0
    components = run_cli("components", "--help")
    assert components.returncode == 0 and "query the registry" in components.stdout  # the core's command
    listed = run_cli("plugins", "list").stdout
    assert "clash" in listed and "its command 'components' is already provided by the core" in listed
    dry = run_cli("run", "model=clash.net", "data=synthetic", "--dry-run")
    assert dry.returncode == 2 and "the plugin 'clash' is broken" in dry.stderr  # and its components are gone


def test_a_command_clash_between_plugins_breaks_only_the_later_one(plugin_site, tmp_path) -> None:
    plugin_site("aaa", COMMAND.format(command="dup", help="from aaa"))
    plugin_site("bbb", COMMAND.format(command="dup", help="from bbb").replace('"net"', '"bnet"'))
    out = run_cli("dup")
    assert out.returncode == 0 and "from aaa" in out.stdout  # the earlier plugin keeps its command
    listed = run_cli("plugins", "list").stdout
    assert "plugin 'aaa'" in listed and "its command 'dup'" in listed
    # the broken plugin's components are gone too, with the reason
    dry = run_cli("run", "model=bbb.bnet", "data=synthetic", "--dry-run")
    assert dry.returncode == 2 and "the plugin 'bbb' is broken" in dry.stderr
    assert run_cli("run", "model=aaa.net", "data=synthetic", "--dry-run").returncode == 0


# --------------------------------------------------------------------------- defect 3: sys.exit


def test_a_plugin_calling_sys_exit_at_import_is_broken_not_fatal(plugin_site) -> None:
    plugin_site("quitter", "import sys\nsys.exit('bye from the plugin')\n")
    for command in (["--help"], ["plugins", "list"], ["run", "core/mlp-synthetic", "--dry-run"]):
        out = run_cli(*command)
        assert out.returncode == 0, (command, out.stderr)
    listed = run_cli("plugins", "list").stdout
    assert "quitter" in listed and "called sys.exit('bye from the plugin')" in listed


# --------------------------------------------------------------------------- defect 4: lifecycle hooks


def test_a_failing_adjust_config_stops_the_run_and_is_listed_broken(plugin_site) -> None:
    plugin_site("fussy", RAISES_IN_ADJUST)
    dry = run_cli("run", "core/mlp-synthetic", "--dry-run")
    assert dry.returncode == 2, dry.stderr
    assert "plugin 'fussy'" in dry.stderr and "engine_adjust_config" in dry.stderr and "boom in adjust" in dry.stderr
    assert "Traceback" not in dry.stderr and "config is valid" not in dry.stderr
    listed = run_cli("plugins", "list").stdout
    assert "broken" in listed and "boom in adjust" in listed  # recorded: later commands leave it out
    assert run_cli("run", "core/mlp-synthetic", "--dry-run").returncode == 0
    info = run_cli("plugins", "info", "fussy")
    assert "boom in adjust" in info.stdout
    assert run_cli("plugins", "enable", "fussy").returncode == 0  # repair: retry it
    assert run_cli("run", "core/mlp-synthetic", "--dry-run").returncode == 2


def test_a_failing_callbacks_hook_stops_the_run_before_its_directory_exists(plugin_site, tmp_path) -> None:
    plugin_site("noisy", RAISES_IN_CALLBACKS)
    out = run_cli("run", *TINY, *QUIET, f"run.dir={tmp_path}", "run.name=r")
    assert out.returncode == 2, out.stderr
    assert "plugin 'noisy'" in out.stderr and "engine_callbacks" in out.stderr and "boom in callbacks" in out.stderr
    assert not (tmp_path / "r").exists()


# --------------------------------------------------------------------------- defect 5: order


def test_hooks_are_called_core_first_then_by_plugin_name(plugin_site) -> None:
    code = """
from engine import Component, hookimpl

@hookimpl
def engine_models():
    return [Component("net", "engine._builtins.models:MLP")]

@hookimpl
def engine_adjust_config(config):
    config["run"]["name"] = (config["run"]["name"] or "") + "{{name}},"
"""
    site = plugin_site("zeta", code.replace("{{name}}", "zeta"))
    plugin_site("alpha", code.replace("{{name}}", "alpha"))
    _installed_earlier(site, "engine-zeta")  # installed first
    hook = PluginManager().hook
    called = [impl.plugin_name for impl in reversed(hook.engine_models.get_hookimpls())]  # pluggy's order
    assert called == ["core", "alpha", "zeta"]
    reg = engine.get_registry()
    assert compose(reg, "core/mlp-synthetic")["run"]["name"] == "alpha,zeta,"


# --------------------------------------------------------------------------- defect 6: names


def test_hooks_see_qualified_names(plugin_site) -> None:
    plugin_site(
        "spy",
        """
from engine import hookimpl

@hookimpl
def engine_adjust_config(config):
    config["run"]["name"] = "|".join(config[k]["name"] for k in ("task", "data", "model", "optimizer"))
""",
    )
    reg = engine.get_registry()
    cfg = compose(reg, None, [], ["model=mlp", "data=synthetic", "optimizer=adamw"])
    assert cfg["run"]["name"] == "core.supervised|core.synthetic|core.mlp|core.adamw"
    with pytest.raises(ConfigError, match="'task' must be a component name or a mapping"):
        compose(reg, None, [], ["task.name=5", "data=synthetic"])


# --------------------------------------------------------------------------- defect 7: install


def test_plugins_install_ignores_an_engine_folder_here_and_shows_pips_error(tmp_path) -> None:
    shadow = tmp_path / "engine"
    shadow.mkdir()
    (shadow / "__init__.py").write_text("raise ImportError('the wrong engine')\n")
    out = run_cli("plugins", "install", "--no-index", "engine-no-such-plugin-xyz", cwd=tmp_path)
    assert out.returncode == 2, out.stderr
    assert "the wrong engine" not in out.stderr and "CalledProcessError" not in out.stderr
    error = next(line for line in out.stderr.splitlines() if line.startswith("error: pip install"))
    assert "engine-no-such-plugin-xyz" in error and ("No matching distribution" in error or "version" in error)


# --------------------------------------------------------------------------- defect 8: validation


def test_dry_run_reads_parameters_it_cannot_read_statically_by_importing(plugin_site) -> None:
    plugin_site(
        "reexp",
        """
from engine import Component, hookimpl

@hookimpl
def engine_losses():
    return [Component("l1", "torch.nn:L1Loss", "a re-export the source reader cannot follow")]
""",
    )
    reg = engine.get_registry()
    base = ["model=mlp", "data=synthetic", "loss=reexp.l1"]
    with pytest.raises(ConfigError, match="did you mean 'reduction'"):
        make_plan(compose(reg, None, [], [*base, "loss.reductoin=sum"]), reg)
    plan = make_plan(compose(reg, None, [], [*base, "loss.reduction=sum"]), reg)
    assert any("read by importing torch.nn:L1Loss" in note for note in plan.notes)
    dry = run_cli("run", *base, "--dry-run")
    assert dry.returncode == 0 and "read by importing" in dry.stderr


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("trainer.strategy=x:y", "not a strategy Lightning knows"),
        ("trainer.accelerator=gpux", "not an accelerator Lightning knows — did you mean 'gpu'"),
        ("trainer.precision=17", "not a precision Lightning knows"),
        ("trainer.profiler=fancy", "not a profiler Lightning knows"),
        # issue 36, defect 4: these passed --dry-run, then failed at fit after the data loaded
        ("trainer.strategy=fsdp", r"trainer.strategy=fsdp needs CUDA GPUs \(trainer.accelerator=cuda\)"),
        ("trainer.strategy=fsdp_cpu_offload", "needs CUDA GPUs"),
        ("trainer.strategy=deepspeed", "trainer.strategy=deepspeed needs the deepspeed package"),
        ("trainer.strategy=deepspeed_stage_2", "needs the deepspeed package"),
    ],
)
def test_trainer_names_are_checked_before_any_run(override: str, message: str) -> None:
    reg = engine.get_registry()
    with pytest.raises(ConfigError, match=message):
        make_plan(compose(reg, "core/mlp-synthetic", overrides=[override]), reg)


@pytest.mark.slow
def test_a_trainer_lightning_refuses_leaves_no_run_directory(tmp_path) -> None:
    out = run_cli("run", *TINY, *QUIET, "trainer.accelerator=mps", f"run.dir={tmp_path}", "run.name=r")
    assert out.returncode == 2, out.stderr
    assert "lightning.Trainer refused" in out.stderr and not (tmp_path / "r").exists()


# --------------------------------------------------------------------------- defect 9: --disable


@pytest.mark.slow
def test_disable_holds_when_a_run_is_reopened(plugin_site, tmp_path) -> None:
    marker = tmp_path / "imported"
    plugin_site("marker", f"open({str(marker)!r}, 'a').close()\n" + MODEL.format(model="net"))
    train = run_cli("--disable", "marker", "run", *TINY, *QUIET, f"run.dir={tmp_path}", "run.name=r")
    assert train.returncode == 0, train.stderr
    assert not marker.exists()
    out = run_cli("--disable", "marker", "run", "--resume", str(tmp_path / "r"), "trainer.max_epochs=2", *QUIET)
    assert out.returncode == 0, out.stderr
    assert not marker.exists()  # the reopened run's registry left the plugin out too


# --------------------------------------------------------------------------- all at once


def test_every_broken_plugin_at_once_leaves_the_engine_working(plugin_site) -> None:
    plugin_site("imports", "raise RuntimeError('boom at import')\n")
    plugin_site("quitter", "import sys\nsys.exit('bye')\n")
    plugin_site("typo", "from engine import hookimpl\n\n@hookimpl\ndef engine_modles():\n    return []\n")
    plugin_site("hookraise", "from engine import hookimpl\n\n@hookimpl\ndef engine_models():\n    raise OSError('x')\n")
    plugin_site("core", MODEL.format(model="mlp"), dist="engine-impostor")
    plugin_site("dupname", MODEL.format(model="a"), dist="engine-dupname", module="dup_one")
    plugin_site("dupname", MODEL.format(model="b"), dist="dupname-fork", module="dup_two")
    plugin_site("clash", COMMAND.format(command="run", help="not the core's run"))
    plugin_site("fussy", RAISES_IN_ADJUST)
    plugin_site("noisy", RAISES_IN_CALLBACKS)
    # The one lifecycle hook that fails on every config stops the first run that calls it; from then
    # on it is recorded broken, like the others.
    assert run_cli("run", "core/mlp-synthetic", "--dry-run").returncode == 2
    for command in (["--help"], ["plugins", "list"], ["run", "core/mlp-synthetic", "--dry-run"]):
        out = run_cli(*command)
        assert out.returncode == 0, (command, out.stderr)
    listed = run_cli("plugins", "list").stdout
    for expected in ("boom at import", "sys.exit('bye')", "engine_modles", "OSError", "engine-impostor"):
        assert expected in listed, expected
    for expected in ("dupname-fork", "its command 'run'", "boom in adjust"):
        assert expected in listed, expected


def test_engine_imports_without_torch() -> None:
    modules = "engine, engine._cli.main, engine._config.plan, engine.runs, engine.console, engine.protocols"
    code = f"import sys, {modules}; print('torch' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# --------------------------------------------------------------------------- the task's figures


def test_the_table_shows_the_best_checkpoint_beside_the_final_figures(tmp_path) -> None:
    # Keeping the *worst* accuracy as "best" makes the kept checkpoint an early one, as a collapsing
    # RL policy's is: the table must report the kept checkpoint's figures, not only the last epoch's.
    args = [*TINY[:3], "trainer.max_epochs=3", *QUIET, "checkpoint.monitor=val/accuracy", "checkpoint.mode=min"]
    out = run_cli("run", *args, f"run.dir={tmp_path}", "run.name=r")
    assert out.returncode == 0, out.stderr
    summary = json.loads((tmp_path / "r" / "summary.json").read_text())
    rows = [r for r in csv.DictReader((tmp_path / "r" / "csv/0/metrics.csv").open()) if r.get("val/accuracy")]
    worst = min(float(r["val/accuracy"]) for r in rows)
    assert summary["best_metrics"]["val/accuracy"] == pytest.approx(worst)
    assert summary["best_step"] == int(min(rows, key=lambda r: float(r["val/accuracy"]))["step"]) + 1
    assert summary["primary_metric"]["name"] == "test/accuracy" and summary["primary_metric"]["mode"] == "max"
    header, *lines = out.stdout.splitlines()[: 1 + len(summary["best_metrics"])]
    assert "final" in header and f"best checkpoint (step {summary['best_step']})" in header
    assert lines[0].startswith("test/accuracy *")  # the task's primary metric first
