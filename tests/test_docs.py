"""The hook reference's examples run: each section is installed as a plugin and checked."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

import engine
from engine.testing import check_plugin, run_cli

HOOKS_MD = Path(__file__).resolve().parents[1] / "docs" / "hooks.md"
TINY = [
    "data.num_samples=200",
    "trainer.max_epochs=1",
    "trainer.enable_progress_bar=false",
    "trainer.enable_model_summary=false",
]


def sections() -> dict[str, dict[str, str]]:
    """``{hook: {"my_plugin.py": code, "my_targets.py": code}}`` from docs/hooks.md."""
    out: dict[str, dict[str, str]] = {}
    for part in re.split(r"^## `(engine_\w+)`$", HOOKS_MD.read_text(), flags=re.M)[1:]:
        if part.startswith("engine_"):
            hook = part
            out[hook] = {}
            continue
        for block in re.findall(r"```python\n(.*?)```", part, flags=re.S):
            first = block.splitlines()[0]
            out[hook][first.removeprefix("# ").strip()] = block
    return out


SECTIONS = sections()


def _plan(recipe: str | None, *overrides: str) -> engine.Plan:
    return engine.plan(engine.compose(recipe, [], list(overrides)))


def test_every_hookspec_has_a_runnable_example() -> None:
    from engine._contract import hookspecs

    specs = {name for name in dir(hookspecs) if name.startswith("engine_")}
    assert set(SECTIONS) == specs
    for hook, files in SECTIONS.items():
        assert set(files) == {"my_plugin.py", "my_targets.py"}, hook


@pytest.fixture
def install(plugin_site, monkeypatch: pytest.MonkeyPatch):
    def make(hook: str) -> Path:
        files = SECTIONS[hook]
        site = plugin_site("my", files["my_plugin.py"], module="my_plugin")
        (site / "my_targets.py").write_text(files["my_targets.py"])
        return site

    yield make
    sys.modules.pop("my_targets", None)


@pytest.mark.parametrize(
    "hook",
    [
        "engine_models",
        "engine_losses",
        "engine_optimizers",
        "engine_schedulers",
        "engine_data_sources",
        "engine_deploy_targets",
        "engine_tasks",
        "engine_recipes",
    ],
)
def test_component_examples_pass_the_kit(install, tmp_path: Path, hook: str) -> None:
    install(hook)
    passed = check_plugin("my", run_dir=tmp_path, facts={"input_shape": [1, 8, 8], "num_classes": 10})
    assert passed and all("my" in p for p in passed)
    if hook == "engine_data_sources":  # the core's mlp takes its sizes from the example's facts
        engine.get_registry(fresh=True)
        plan = engine.plan(engine.compose(None, [], ["model=mlp", "data=my.moons", f"run.dir={tmp_path}", *TINY[1:]]))
        assert plan.config["data"]["name"] == "my.moons"
        assert engine.train(plan).summary["status"] == "completed"


def test_config_sections_example(install, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from engine import ConfigError

    install("engine_config_sections")
    engine.get_registry(fresh=True)
    assert _plan("core/mlp-synthetic").config["notify"] is None  # optional: off until set
    with pytest.raises(ConfigError, match="did you mean 'every'"):
        _plan("core/mlp-synthetic", "notify.evry=2")
    with pytest.raises(ConfigError, match=r"notify\.every must be >= 1"):
        _plan("core/mlp-synthetic", "notify.every=0")
    overrides = ["model=mlp", "data=synthetic", f"run.dir={tmp_path}", *TINY[:1], "trainer.max_epochs=2", *TINY[2:]]
    plan = _plan(None, *overrides, "notify.every=2", "notify.prefix=demo")
    assert plan.config["notify"] == {"every": 2, "prefix": "demo"}
    assert engine.train(plan).summary["status"] == "completed"
    assert "demo: epoch 2 val/loss" in capsys.readouterr().out


def test_adjust_config_example(install, monkeypatch: pytest.MonkeyPatch) -> None:
    install("engine_adjust_config")
    monkeypatch.setenv("MY_SMOKE", "1")
    engine.get_registry(fresh=True)
    cfg = _plan("core/mlp-synthetic").config
    assert cfg["trainer"]["max_epochs"] == 1 and cfg["trainer"]["limit_train_batches"] == 2


def test_callbacks_example(install, tmp_path: Path) -> None:
    install("engine_callbacks")
    engine.get_registry(fresh=True)
    result = engine.train(_plan(None, "model=mlp", "data=synthetic", f"run.dir={tmp_path}", *TINY))
    header = (result.run_dir / "csv/0/metrics.csv").read_text().splitlines()[0]
    assert "train/samples_per_s" in header


@pytest.mark.slow
def test_add_commands_example(install, tmp_path: Path) -> None:
    install("engine_add_commands")
    out = run_cli("run", "model=mlp", "data=synthetic", f"run.dir={tmp_path}", "run.name=r", *TINY)
    assert out.returncode == 0, out.stderr
    counted = run_cli("count", str(tmp_path / "r"))
    assert counted.returncode == 0, counted.stderr
    assert "train: 140" in counted.stdout and "test: 40" in counted.stdout  # 200 samples, 10 % val, 20 % test
    mistake = run_cli("count", str(tmp_path / "nope"))
    assert mistake.returncode == 2 and "run directory not found" in mistake.stderr


def test_pipeline_steps_example(install, tmp_path: Path) -> None:
    install("engine_pipeline_steps")
    reg = engine.get_registry(fresh=True)
    step = reg.resolve("step", "summarize")
    assert step.qualified_name == "my.summarize" and engine.list_components("step") == ["my.summarize"]
    with pytest.raises(engine.ConfigError, match="does not exist"):
        step.load_check()({"run": str(tmp_path / "nope"), "digits": 4}, "report.summarize", {})
    run = engine.train(_plan(None, "model=mlp", "data=synthetic", f"run.dir={tmp_path}", "run.name=r", *TINY)).run_dir
    recorded = step.load()(out=tmp_path / "report", run=str(run), digits=3)
    assert recorded["metrics"]["rows"] >= 2 and "| test/accuracy |" in (tmp_path / "report" / "summary.md").read_text()


def test_model_built_example(install) -> None:
    install("engine_model_built")
    engine.get_registry(fresh=True)
    built = engine.build(_plan("core/mlp-synthetic", "model.lock_params=[net.1.*]"))
    frozen = {n for n, p in built.slots["model"].named_parameters() if not p.requires_grad}
    assert frozen == {"net.1.weight", "net.1.bias"}  # the first hidden layer's LayerNorm


def test_datasets_built_example(install) -> None:
    install("engine_datasets_built")
    engine.get_registry(fresh=True)
    built = engine.build(_plan("core/mlp-synthetic", "subsample.train=64"))
    assert len(built.datamodule.splits["train"]) == 64 and len(built.datamodule.splits["val"]) > 64


def test_run_finished_example(install, tmp_path: Path) -> None:
    install("engine_run_finished")
    engine.get_registry(fresh=True)
    summary = engine.train(_plan(None, "model=mlp", "data=synthetic", f"run.dir={tmp_path}", *TINY)).summary
    assert summary["parameters"]["total"] >= summary["parameters"]["trainable"] > 0


def test_run_collection_example(install, tmp_path: Path) -> None:
    import json

    install("engine_run_collection")
    engine.get_registry(fresh=True)
    (tmp_path / "seeds.json").write_text(json.dumps({"runs": ["seed-0", "seed-1"]}))
    collection = engine.run_collection(tmp_path)
    assert collection.kind == "seeds" and [name for name, _ in collection.members] == ["seed-0", "seed-1"]
    assert engine.run_collection(tmp_path / "elsewhere") is None


def test_run_main_example(install, tmp_path: Path) -> None:
    install("engine_run_main")
    args = ["run", "model=mlp", "data=synthetic", f"run.dir={tmp_path / 'runs'}", "run.name=s", *TINY]
    assert "--seeds" in run_cli("run", "--help").stdout
    dry = run_cli(*args, "--seeds", "2", "--dry-run")
    assert dry.returncode == 0 and not (tmp_path / "runs").exists(), dry.stderr
    out = run_cli(*args, "--seeds", "2")
    assert out.returncode == 0, out.stderr
    assert sorted(p.name for p in (tmp_path / "runs").iterdir()) == ["s-0", "s-1"]
