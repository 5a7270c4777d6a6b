"""Composition and validation, all before any compute."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import engine
from engine import ConfigError


def resolved(*overrides: str, recipe: str | None = None, files: list[str] = ()) -> dict:  # type: ignore[assignment]
    return engine.plan(engine.compose(recipe, list(files), list(overrides))).config


def test_shorthand_and_parameters() -> None:
    cfg = resolved("model=mlp", "data=synthetic", "model.hidden=[64,32]", "optimizer.lr=3e-4")
    assert cfg["model"]["name"] == "core.mlp" and cfg["model"]["hidden"] == [64, 32]
    assert cfg["optimizer"] == {
        "name": "core.adamw",
        "lr": 3e-4,
        "betas": [0.9, 0.999],
        "eps": 1e-8,
        "weight_decay": 0.01,
    }
    assert cfg["data"]["batch_size"] == 64  # loader defaults are written out
    assert "in_features" not in cfg["model"]  # left for the data's facts


def test_switching_a_component_drops_the_old_parameters() -> None:
    cfg = resolved("model=mlp", "data=synthetic", "optimizer=sgd", "optimizer.lr=0.05", "optimizer=adam")
    assert cfg["optimizer"]["name"] == "core.adam" and cfg["optimizer"]["lr"] == 1e-3
    same = resolved("model=mlp", "data=synthetic", "optimizer.lr=0.05", "optimizer=adamw")
    assert same["optimizer"]["lr"] == 0.05  # same name: parameters kept


def test_sources_apply_in_order(tmp_path) -> None:
    first = tmp_path / "a.yaml"
    first.write_text("model: mlp\ndata: {name: synthetic, num_classes: 3}\ntrainer: {max_epochs: 2}\n")
    second = tmp_path / "b.yaml"
    second.write_text("trainer:\n  max_epochs: 4\n  gradient_clip_val: 1.0\nseed: 7\n")
    cfg = resolved("trainer.max_epochs=5", files=[str(first), str(second)])
    assert cfg["trainer"] == {"max_epochs": 5, "gradient_clip_val": 1.0}
    assert cfg["seed"] == 7 and cfg["data"]["num_classes"] == 3


def test_recipe_then_overrides() -> None:
    cfg = resolved("trainer.max_epochs=1", "scheduler=null", recipe="core/mlp-synthetic")
    assert cfg["trainer"]["max_epochs"] == 1 and cfg["scheduler"] is None
    assert cfg["data"]["num_classes"] == 6


def test_interpolation() -> None:
    cfg = resolved("model=mlp", "data=synthetic", "seed=3", "data.seed=${seed}")
    assert cfg["data"]["seed"] == 3


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["model=mlpp", "data=synthetic"], "unknown model 'mlpp' — did you mean 'mlp'?"),
        (
            ["model=mlp", "data=synthetic", "model.hiden=[3]"],
            "unknown parameter 'model.hiden' for model 'core.mlp' — did you mean 'hidden'?",
        ),
        (
            ["model=mlp", "data=synthetic", "trainer.max_epoch=3"],
            "unknown parameter 'trainer.max_epoch' for lightning.Trainer — did you mean 'max_epochs'",
        ),
        (["model=mlp", "data=synthetic", "optimizer.lr=abc"], "optimizer.lr must be float >= 0, got 'abc' (str)"),
        (["model=mlp", "data=synthetic", "model.hidden=3"], "model.hidden must be list[int >= 1]"),
        (["model=mlp", "data=synthetic", "model.activation=foo"], "model.activation must be one of 'relu', 'gelu'"),
        (["model=mlp", "data=synthetic", "modle.depth=3"], "unknown config section 'modle' — did you mean 'model'?"),
        (["model=mlp", "data=csv"], "data source 'core.csv' needs parameter 'path'"),
        (["model=mlp"], "no data source chosen"),
        (["data=synthetic"], "needs a model"),
        (["model=mlp", "data=synthetic", "trainer.logger=false"], "trainer.logger must be a name or a list of names"),
        (["model=mlp", "data=synthetic", "seed=x"], "seed must be an integer"),
        (["model=mlp", "data=synthetic", "checkpoint.mode=up"], "checkpoint.mode must be"),
        (["model=mlp", "data=synthetic", "early_stopping.patiance=2"], "did you mean 'patience'"),
        (["model=mlp", "data=synthetic", "task=superviesd"], "did you mean 'supervised'"),
        (["model", "data=synthetic"], "expected key=value"),
    ],
)
def test_mistakes_are_caught_before_compute(overrides: list[str], message: str) -> None:
    with pytest.raises(ConfigError) as err:
        resolved(*overrides)
    assert message in str(err.value)


def test_missing_and_bad_files(tmp_path) -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        resolved(files=[str(tmp_path / "nope.yaml")])
    bad = tmp_path / "bad.yaml"
    bad.write_text("- just\n- a list\n")
    with pytest.raises(ConfigError, match="must hold a mapping"):
        resolved(files=[str(bad)])


def test_required_model_parameter_not_a_fact(plugin_site) -> None:
    plugin_site(
        "needs",
        """
from engine import Component, hookimpl

@hookimpl
def engine_models():
    return [Component("net", "needs_target:Net")]
""",
    )
    site = plugin_site("other", "")
    (site / "needs_target.py").write_text(
        "class Net:\n    def __init__(self, in_features: int, depth: int):\n        pass\n"
    )
    with pytest.raises(ConfigError, match="needs parameter 'depth'"):
        resolved("model=needs.net", "data=synthetic")  # in_features is a fact, depth is not
    assert resolved("model=needs.net", "data=synthetic", "model.depth=2")["model"] == {"name": "needs.net", "depth": 2}


def test_validation_does_not_import_torch() -> None:
    code = (
        "import sys\n"
        "from engine._cli.main import main\n"
        "rc = main(['run', 'core/mlp-synthetic', 'model.hidden=[8]', '--dry-run'])\n"
        "rc2 = main(['run', 'model=mlpp', 'data=synthetic'])\n"
        "print(rc, rc2, 'torch' in sys.modules, 'lightning' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == "0 2 False False"


def test_a_section_missing_from_an_older_config_gets_its_defaults() -> None:
    cfg = resolved("model=mlp", "data=synthetic")
    del cfg["checkpoint"], cfg["early_stopping"]  # written before these sections existed
    again = engine.plan(cfg).config
    assert again["checkpoint"]["save_last"] is True and again["early_stopping"] is None
    with pytest.raises(ConfigError, match="'checkpoint' must be a mapping"):
        engine.plan({**cfg, "checkpoint": 3})


def test_a_parsed_override_is_the_callers_own_copy() -> None:
    from engine import parse_override

    keys, value = parse_override("model.hidden=[64,64]")
    value.append(1)
    keys.append("x")
    assert parse_override("model.hidden=[64,64]") == (["model", "hidden"], [64, 64])  # parsed once, never shared
    with pytest.raises(ConfigError, match="expected key=value"):
        parse_override("model.hidden")


def test_swapping_a_recipes_component_says_which_keys_were_dropped(cli: Any, tmp_path: Path) -> None:
    """Issue 37 item 7: the recipe's data keys vanish with its data source; --dry-run says so, one note per key."""
    (tmp_path / "x.csv").write_text("a,b,label\n1,2,0\n3,4,1\n")
    r = cli("run", "mlp-synthetic", "data=csv", f"data.path={tmp_path / 'x.csv'}", "--dry-run")
    lines = [ln for ln in r.stderr.splitlines() if "dropped" in ln]
    assert lines == [
        f"# note: recipe core/mlp-synthetic's data.{key}={value} dropped: data is now csv"
        for key, value in (("num_classes", 6), ("num_features", 32), ("num_samples", 6000))
    ]
    assert "dropped" not in cli("run", "mlp-synthetic", "data=synthetic", "model.hidden=[8]", "--dry-run").stderr
    bad = cli("run", "mlp-synthetic", "optimizer=sgdd", "--dry-run")  # unknown: the error alone, no note before it
    assert bad.returncode == 2 and bad.stderr.startswith("error: unknown optimizer 'sgdd'"), bad.stderr
