"""Every technique is one line of config, checked before any compute and without importing torch."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

import engine
from engine import ConfigError
from engine.testing import run_cli_imports


def plan(tiny: tuple[str, ...], *overrides: str) -> Any:
    return engine.plan(engine.compose(overrides=[*tiny, *overrides]))


def test_techniques_validate_without_torch(tiny: tuple[str, ...], fake_run: Path, tmp_path: Path) -> None:
    items = [
        *tiny,
        f"model.init_from={fake_run}",
        "model.init_skip=[net.5.*]",
        "model.init_mismatch=reinit",
        "model.freeze=[net.1.*]",
        "model.unfreeze_at_epoch=1",
        "optimizer.param_groups=[{params: 'net.1.*', lr: 1e-4}]",
        "prune.amount=0.5",
        "trainer.precision=bf16-mixed",
        "trainer.gradient_clip_val=1.0",
        "trainer.accumulate_grad_batches=4",
        "early_stopping.patience=3",
        "scheduler=reduce_on_plateau",
        "scheduler.patience=2",
    ]
    done, torch = run_cli_imports("run", *items, "--dry-run", env={"ENGINE_HOME": str(tmp_path / "home")})
    assert done.returncode == 0, done.stderr[-2000:]
    assert not torch, "torch was imported"
    for line in ("init_from:", "freeze:", "param_groups:", "amount: 0.5", "precision: bf16-mixed", "patience: 3"):
        assert line in done.stdout
    distill = [*tiny, "task=distill", f"task.teacher={fake_run}", "--dry-run"]
    teach, torch = run_cli_imports("run", *distill)
    assert teach.returncode == 0, teach.stderr[-2000:]
    assert not torch and "techniques.distill" in teach.stdout


def test_listing_the_distill_task_stays_torch_free() -> None:
    done, torch = run_cli_imports("components", "show", "distill")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "task.teacher" in done.stdout and not torch


def test_the_resolved_config_keeps_the_keys(tiny: tuple[str, ...], fake_run: Path) -> None:
    config = plan(tiny, f"model.init_from={fake_run}", "model.freeze=net.1", "prune.amount=0.3").config
    assert config["model"]["init_from"] == str(fake_run)
    assert config["model"]["freeze"] == ["net.1"]  # one pattern made a list
    assert config["prune"]["amount"] == 0.3 and config["prune"]["method"] == "l1_unstructured"
    assert plan(tiny).config["prune"] is None  # off unless a key is set


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["model.init_skip=[head.*]"], "model.init_skip needs model.init_from"),
        (["model.init_from=/nowhere/run"], "model.init_from: /nowhere/run does not exist"),
        (["model.unfreeze_at_epoch=2"], "model.unfreeze_at_epoch needs model.freeze"),
        (["model.unfreeze_at_epoch=soon"], r"model.unfreeze_at_epoch must be int \| None, got 'soon'"),
        (["model.freeze=[net.1]", "model.unfreeze_at_epoch=0"], "model.unfreeze_at_epoch must be >= 1"),
        (["model.weights=demo"], "model 'core.mlp' ships no weights 'demo'"),
        (["optimizer.param_groups=[{params: 'net.*', lrr: 0.1}]"], "unknown setting 'lrr'.*did you mean 'lr'"),
        (["optimizer.param_groups=[{lr: 0.1}]"], r"param_groups\[0\] needs 'params'"),
        (["prune.amount=1.5"], "prune.amount must be between 0 and 1"),
        (["prune.end_epoch=2"], "leaves no epoch of fine-tuning"),
        (["prune.start_epoch=1", "prune.end_epoch=0"], r"prune.end_epoch \(0\) comes before prune.start_epoch"),
        (["prune.method=magnitude"], "prune.method must be"),
        (["task=distill"], "needs parameter 'teacher'"),
        (["task=distill", "task.teacher=/nowhere"], "task.teacher: /nowhere does not exist"),
    ],
)
def test_technique_mistakes_are_config_errors(tiny: tuple[str, ...], overrides: list[str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        plan(tiny, *overrides)


def test_cli_mistake_exits_2_without_traceback(cli: Any, tiny: tuple[str, ...], tmp_path: Path) -> None:
    done = cli("run", *tiny, f"model.init_from={tmp_path}", "--dry-run")
    assert done.returncode == 2
    assert "is not a run directory" in done.stderr and "Traceback" not in done.stderr


def test_the_old_task_name_still_resolves(tiny: tuple[str, ...], fake_run: Path, capsys: Any) -> None:
    config = plan(tiny, "task=core.distill", f"task.teacher={fake_run}").config
    assert config["task"]["name"] == "techniques.distill"
    assert "'core.distill' is now 'techniques.distill'" in capsys.readouterr().err


def test_a_pipeline_stage_may_name_a_run_that_does_not_exist_yet(tiny: tuple[str, ...], tmp_path: Path) -> None:
    from engine.runs import planned_runs

    later = tmp_path / "stages" / "pre"
    with planned_runs([later]):
        config = plan(tiny, f"model.init_from={later}", "task=distill", f"task.teacher={later}").config
    assert config["model"]["init_from"] == str(later)
