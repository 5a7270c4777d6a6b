"""The space syntax, and every mistake in it found before a trial starts (one line, named, exit 2)."""

from __future__ import annotations

import itertools
import math
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from engine_sweep.space import format_value, parse_dimension, parse_item, split_args

from engine import ConfigError


def test_expressions_parse_into_dimensions() -> None:
    lr = parse_dimension("optimizer.lr", "loguniform(1e-4,1e-1)")
    assert (lr.kind, lr.low, lr.high) == ("loguniform", 1e-4, 0.1)
    assert lr.distribution().log and lr.override(0.003) == "optimizer.lr=0.003"
    epochs = parse_dimension("trainer.max_epochs", "int(2, 8, 2)")
    assert (epochs.low, epochs.high, epochs.step) == (2, 8, 2)
    assert epochs.grid(10) == [2, 4, 6, 8] and epochs.override(4) == "trainer.max_epochs=4"
    hidden = parse_dimension("model.hidden", "choice([32], [64,64])")
    assert hidden.labels() == ["[32]", "[64,64]"]  # lists are sampled as the text written
    assert hidden.value("[64,64]") == [64, 64] and hidden.override("[64,64]") == "model.hidden=[64,64]"
    names = parse_dimension("optimizer", "choice(adamw, sgd)")
    assert names.labels() == ["adamw", "sgd"] and names.native_labels
    mixed = parse_dimension("model.dropout", "choice(0, 0.1, null)")
    assert mixed.labels() == [0, 0.1, None]


def test_grids_hold_their_bounds_exactly() -> None:
    lr = parse_dimension("optimizer.lr", "loguniform(1e-4,1e-1)")
    grid = lr.grid(4)
    assert grid[0] == 1e-4 and grid[-1] == 0.1 and len(grid) == 4
    assert all(math.isclose(b / a, 10.0) for a, b in itertools.pairwise(grid))
    assert parse_dimension("model.dropout", "uniform(0,0.5)").grid(3) == [0.0, 0.25, 0.5]
    assert parse_dimension("seed", "int(0,100)").grid(3) == [0, 50, 100]


def test_component_choices_apply_before_their_parameters_and_directions_follow_names() -> None:
    from engine_sweep.records import default_direction
    from engine_sweep.space import ordered

    assert ordered(["optimizer.lr", "model.hidden", "optimizer"]) == ["optimizer", "optimizer.lr", "model.hidden"]
    directions = {m: default_direction(m) for m in ("val/accuracy", "val/loss", "test/wer", "val/f1", "val/mse")}
    assert directions == {
        "val/accuracy": "max",
        "val/loss": "min",
        "test/wer": "min",
        "val/f1": "max",
        "val/mse": "min",
    }


def test_values_become_overrides_that_read_back() -> None:
    from engine import parse_override

    for value in (0.1, 1e-05, 3, True, None, "adamw", "a b", "007", "+1", [64, 64], {"a": 1}):
        assert parse_override("x=" + format_value(value))[1] == value
    assert split_args(' a, [1, 2], "x,y" , {b: 1}') == ["a", "[1, 2]", '"x,y"', "{b: 1}"]


@pytest.mark.parametrize(
    ("item", "expected"),
    [
        ("optimizer.lr=", "empty expression"),
        ("optimizer.lr=  ", "empty expression"),
        ("optimizer.lr", "expected KEY=EXPR"),
        ("optimizer.lr=loguniform(1e-4)", "loguniform() takes 2 numbers (low, high), got 1"),
        ("optimizer.lr=logunifrom(1e-4,1)", "unknown function 'logunifrom' — did you mean 'loguniform'"),
        ("optimizer.lr=loguniform(0,1)", "needs low > 0"),
        ("optimizer.lr=uniform(1,1)", "needs low < high"),
        ("optimizer.lr=uniform(a,1)", "takes a number, got 'a'"),
        ("trainer.max_epochs=int(1.5,3)", "takes an integer, got '1.5'"),
        ("trainer.max_epochs=int(1,4,2)", "a step >= 1 that divides high - low"),
        ("model.hidden=choice([16],[32]", "cannot read 'choice([16],[32]'"),
        ("model.hidden=choice([16],[32)", "cannot read the value '[32'"),
        ("model.hidden=choice()", "choice() needs at least one value"),
        ("model.hidden=choice([16],,[32])", "an empty argument"),
        ("model.hidden=choice(1,1)", "lists 1 twice"),
        ("model..hidden=choice(1,2)", "is not a config key"),
    ],
)
def test_malformed_expressions_are_one_line_errors_naming_them(item: str, expected: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_dimension(*parse_item(item))
    assert expected in info.value.message
    assert info.value.message.startswith(f"--space '{item.rstrip()}")
    assert "\n" not in info.value.message


@pytest.mark.parametrize(
    ("space", "expected"),
    [
        (
            "optimizer.lrr=loguniform(1e-4,1e-1)",
            "unknown parameter 'optimizer.lrr' for optimizer 'core.adamw' — did you mean 'lr'?",
        ),
        ("sceduler.gamma=uniform(0.1,0.9)", "unknown config section 'sceduler' — did you mean 'scheduler'?"),
        ("model.hiden=choice([16],[32])", "did you mean 'hidden'?"),
        ("optimizer=choice(adamw,sgdd)", "unknown optimizer 'sgdd' — did you mean 'sgd'?"),
        ("trainer.max_epochs=uniform(1,3)", "trainer.max_epochs must be"),
        ("optimizer.lr=", "empty expression"),
    ],
)
def test_space_mistakes_stop_the_command_before_any_trial(
    cli: Any, base: list[str], tmp_path: Path, space: str, expected: str
) -> None:
    out = tmp_path / "sweep"
    r = cli("sweep", *base, "--space", space, "--trials", "2", "--metric", "val/accuracy", "--dir", str(out))
    assert r.returncode == 2, r.stderr
    first = r.stderr.splitlines()[0]
    assert first.startswith(f"error: --space '{space}"), r.stderr
    assert expected in first
    assert not out.exists()  # nothing was created, nothing trained


def test_other_mistakes_of_the_command(cli: Any, base: list[str], tmp_path: Path) -> None:
    space = ["--space", "optimizer.lr=loguniform(1e-4,1e-1)"]
    r = cli("sweep", *base, *space, "--dir", str(tmp_path / "a"))
    assert r.returncode == 2 and "needs --metric" in r.stderr
    r = cli("sweep", *base, "--metric", "val/accuracy", "--dir", str(tmp_path / "b"))
    assert r.returncode == 2 and "search space is empty" in r.stderr
    r = cli("sweep", *base, "model.hiden=[3]", *space, "--metric", "val/accuracy")
    assert r.returncode == 2 and "did you mean 'hidden'" in r.stderr  # the base run's own mistake, named as such
    grid = ["--sampler", "grid", "--space", "model.hidden=choice([8],[16])"]
    r = cli("sweep", *base, *grid, "--trials", "3", "--metric", "val/accuracy", "--dir", str(tmp_path / "c"))
    assert r.returncode == 2 and "the grid has 2 points" in r.stderr
    r = cli("sweep", "--resume", str(tmp_path / "nowhere"))
    assert r.returncode == 2 and "is not a sweep directory" in r.stderr
    assert not any(tmp_path.iterdir())


def test_plugin_module_imports_nothing_heavy_and_help_has_examples() -> None:
    heavy = "('torch', 'lightning', 'optuna', 'ray', 'sqlalchemy')"
    code = f"import sys, engine_sweep.plugin; print(sorted(m for m in {heavy} if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
    from engine.testing import run_cli

    done = run_cli("sweep", "--help")
    assert done.returncode == 0
    for text in ("loguniform(1e-4,1e-1)", "choice([32],[64,64])", "--resume", "--backend ray", "results.csv"):
        assert text in done.stdout


def test_conformance(engine_check: Any) -> None:
    passed = engine_check("sweep")
    assert any("sweep" in p for p in passed)


def test_the_sweep_section_is_bookkeeping_left_out_of_config_differences() -> None:
    from engine_experiments.compare import varied  # the experiments plugin's (`engine runs compare`)

    configs = [{"sweep": {"number": n}, "run": {"name": f"{n:03d}"}, "model": {"width": 8 * (n + 1)}} for n in range(2)]
    assert varied(configs) == {"model.width": [8, 16]}


def test_folds_without_the_experiments_plugin_is_one_line(
    cli: Any, base: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "engine_experiments", None)  # as if engine-experiments were not installed
    monkeypatch.setitem(sys.modules, "engine_experiments.crossval", None)
    args = ["--space", "optimizer.lr=loguniform(1e-3,1e-1)", "--metric", "val/accuracy", "--folds", "2"]
    r = cli("sweep", *base, *args, "--dir", str(tmp_path / "cv"))
    assert r.returncode == 2 and r.stderr.startswith("error: --folds needs the experiments plugin")
    assert len(r.stderr.splitlines()) == 2 and not (tmp_path / "cv").exists()
