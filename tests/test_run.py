"""Runs: the run directory, facts flowing into the model, CSV data, resume, determinism."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import lightning as L
import pytest
import torch

import engine
from engine import ConfigError, hookimpl, open_run
from engine._plugins.manager import PluginInfo

TINY = [
    "model=mlp",
    "data=synthetic",
    "data.num_samples=600",
    "data.num_features=7",
    "data.num_classes=3",
    "model.hidden=[16]",
    "trainer.max_epochs=4",
    "trainer.enable_progress_bar=false",
    "trainer.enable_model_summary=false",
    "trainer.log_every_n_steps=1",
]


def train(tmp_path: Path, *overrides: str, name: str = "run", reg: Any = None, resume: Path | None = None):
    reg = reg or engine.get_registry()
    cfg = engine.compose(None, [], [*TINY, f"run.dir={tmp_path}", f"run.name={name}", *overrides], registry=reg)
    return engine.train(engine.plan(cfg, registry=reg), resume=resume)


def test_run_directory_and_facts(tmp_path: Path) -> None:
    result = train(tmp_path)
    d = result.run_dir
    assert d == tmp_path / "run"
    for f in (
        "config.yaml",
        "environment.json",
        "facts.json",
        "summary.json",
        "csv/0/metrics.csv",
        "checkpoints/best.ckpt",
        "checkpoints/last.ckpt",
    ):
        assert (d / f).is_file(), f
    summary = json.loads((d / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["epochs"] == 4 and summary["global_step"] > 0
    assert 0.0 <= summary["metrics"]["test/accuracy"] <= 1.0 and summary["best_checkpoint"] == "checkpoints/best.ckpt"
    env = json.loads((d / "environment.json").read_text())
    core = {"plugin": "core", "distribution": "engine", "version": engine.__version__, "status": "ok", "error": None}
    assert core in env["plugins"]
    assert env["libraries"]["lightning"]
    # Facts flowed into the model: the first layer takes the data's 7 features and outputs its 3 classes.
    facts = json.loads((d / "facts.json").read_text())
    assert facts["in_features"] == 7 and facts["num_classes"] == 3
    state = torch.load(d / "checkpoints/best.ckpt", weights_only=True)["state_dict"]
    weights = [v for k, v in state.items() if k.startswith("model.") and k.endswith("weight") and v.dim() == 2]
    assert weights[0].shape[1] == 7 and weights[-1].shape[0] == 3


def test_user_setting_wins_over_a_fact(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"the model does not fit the data: input of shape \(7,\)"):
        train(tmp_path, "model.in_features=5", "trainer.max_epochs=1")
    assert not (tmp_path / "run").exists()


def test_same_config_and_seed_same_metrics(tmp_path: Path) -> None:
    a = train(tmp_path, name="a").summary["metrics"]
    b = train(tmp_path, name="b").summary["metrics"]
    c = train(tmp_path, "seed=1", name="c").summary["metrics"]
    assert a == b
    assert a != c


class _Crash(L.Callback):
    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if trainer.current_epoch == 2:
            raise RuntimeError("simulated crash")


class _CrashPlugin:
    @hookimpl
    def engine_callbacks(self, config: dict) -> list:
        return [_Crash()]


def test_resume_after_interruption_matches_uninterrupted(tmp_path: Path) -> None:
    extra = ["model.dropout=0.3", "scheduler=cosine"]  # randomness and LR state must both survive
    whole = train(tmp_path, *extra, name="whole").summary

    crashing = engine.get_registry(fresh=True)
    crashing.manager.register(_CrashPlugin(), PluginInfo("crash", None, None, "tests"))
    with pytest.raises(RuntimeError, match="simulated crash"):
        train(tmp_path, *extra, name="cut", reg=crashing)
    cut = tmp_path / "cut"
    failed = json.loads((cut / "summary.json").read_text())
    assert failed["status"] == "failed" and "simulated crash" in failed["error"]
    assert (cut / "checkpoints/last.ckpt").is_file()

    result = train(tmp_path, *extra, name="ignored", reg=engine.get_registry(fresh=True), resume=cut)
    resumed = result.summary
    assert resumed["status"] == "completed" and result.run_dir == cut
    assert resumed["global_step"] == whole["global_step"]
    assert resumed["metrics"] == pytest.approx(whole["metrics"], rel=1e-6, abs=1e-7)


def test_last_checkpoint_holds_the_final_step_between_validations(tmp_path: Path) -> None:
    # 600 samples, batch 64: 9 steps an epoch; validation every 4 steps (across epochs), stop at 11.
    result = train(
        tmp_path, "trainer.max_steps=11", "trainer.val_check_interval=4", "trainer.check_val_every_n_epoch=null"
    )
    last = torch.load(result.run_dir / "checkpoints/last.ckpt", map_location="cpu", weights_only=True)
    assert result.summary["global_step"] == 11 and last["global_step"] == 11
    assert result.summary["last_checkpoint"] == "checkpoints/last.ckpt"


def test_resuming_a_run_killed_before_its_first_checkpoint_trains_it_in_place(tmp_path: Path, capsys) -> None:
    (tmp_path / "early").mkdir()  # what a kill before the first checkpoint leaves
    result = train(tmp_path, reg=engine.get_registry(), resume=tmp_path / "early")
    assert result.run_dir == tmp_path / "early" and result.summary["status"] == "completed"
    assert "has no checkpoint yet; training it again from the start" in capsys.readouterr().err


@pytest.mark.parametrize("scheduler", ["cosine", "step", "onecycle", "reduce_on_plateau"])
def test_schedulers_train(tmp_path: Path, scheduler: str) -> None:
    result = train(tmp_path, f"scheduler={scheduler}", "trainer.max_epochs=2", "optimizer=sgd")
    assert result.summary["status"] == "completed"
    assert any(
        k.startswith("lr-") for k in (tmp_path / "run" / "csv/0/metrics.csv").read_text().splitlines()[0].split(",")
    )


def _write_csv(path: Path, rows: list[str]) -> Path:
    path.write_text("\n".join(rows) + "\n")
    return path


def test_csv_classification_and_regression(tmp_path: Path) -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(300, 3, generator=g)
    labels = ["cat" if a + b > 0 else "dog" for a, b, _ in x.tolist()]
    cls = _write_csv(
        tmp_path / "cls.csv",
        ["a,b,c,animal"] + [f"{a},{b},{c},{y}" for (a, b, c), y in zip(x.tolist(), labels, strict=True)],
    )
    reg = engine.get_registry()
    cfg = engine.plan(
        engine.compose(
            None,
            [],
            [
                "model=mlp",
                "data=csv",
                f"data.path={cls}",
                "data.label=animal",
                "trainer.max_epochs=3",
                "trainer.enable_progress_bar=false",
                f"run.dir={tmp_path}",
                "run.name=cls",
            ],
            registry=reg,
        ),
        registry=reg,
    )
    summary = engine.train(cfg).summary
    assert summary["metrics"]["test/accuracy"] > 0.8
    facts = json.loads((tmp_path / "cls" / "facts.json").read_text())
    assert facts["class_names"] == ["cat", "dog"] and facts["in_features"] == 3

    target = [2 * a - b for a, b, _ in x.tolist()]
    reg_csv = _write_csv(
        tmp_path / "reg.csv",
        ["a,b,c,y"] + [f"{a},{b},{c},{t}" for (a, b, c), t in zip(x.tolist(), target, strict=True)],
    )
    cfg = engine.plan(
        engine.compose(
            None,
            [],
            [
                "model=mlp",
                "data=csv",
                f"data.path={reg_csv}",
                "data.label=y",
                "trainer.max_epochs=3",
                "trainer.enable_progress_bar=false",
                f"run.dir={tmp_path}",
                "run.name=reg",
            ],
            registry=reg,
        ),
        registry=reg,
    )
    summary = engine.train(cfg).summary
    assert "test/mae" in summary["metrics"] and "test/accuracy" not in summary["metrics"]


def test_csv_multilabel_trains_with_bce_and_multilabel_metrics(tmp_path: Path) -> None:
    g = random.Random(0)
    rows = ["a,b,c,red,big,odd"]
    for _ in range(600):
        a, b, c = (g.gauss(0, 1) for _ in range(3))
        rows.append(f"{a},{b},{c},{int(a > 0)},{int(b + c > 0.3)},{int(a * b > 0)}")
    path = _write_csv(tmp_path / "labels.csv", rows)
    result = train(
        tmp_path,
        "data=csv",
        f"data.path={path}",
        "data.label=[red,big,odd]",
        "trainer.max_epochs=10",
        "optimizer.lr=0.01",
    )
    s, facts = result.summary, json.loads((result.run_dir / "facts.json").read_text())
    assert facts["problem"] == "multilabel" and facts["class_names"] == ["red", "big", "odd"]
    assert s["primary_metric"]["name"] == "test/f1" and s["metrics"]["test/f1"] > 0.8
    task = open_run(result.run_dir).task()
    probs = task.predict_step(torch.zeros(4, 3), 0)
    assert probs.shape == (4, 3) and bool(((probs >= 0) & (probs <= 1)).all())
    with pytest.raises(ConfigError, match="must hold only 0 and 1"):
        train(tmp_path, "data=csv", f"data.path={path}", "data.label=[a,red]", "data.problem=multilabel", name="x")


def test_a_regression_target_is_never_silently_reshaped() -> None:
    from engine._builtins.losses import match_target, mse

    assert match_target(torch.zeros(4, 1), torch.ones(4)).shape == (4, 1)  # (N,) vs (N, 1): forgiven
    assert match_target(torch.zeros(4), torch.ones(4, 1)).shape == (4,)
    with pytest.raises(ValueError, match=r"output has shape \[4, 6\] and the target \[4, 2, 3\]"):
        mse()(torch.zeros(4, 6), torch.ones(4, 2, 3))


@pytest.mark.parametrize(
    ("rows", "params", "message"),
    [
        (["a,b,label", "1,2,x"], ["data.label=y"], "no label column 'y'; columns are a, b, label"),
        (["a,b,label", "1,2,x", "1,oops,y"], [], "line 3: column 'b' is not a number: 'oops'"),
        (["a,b,label"], [], "no data rows"),
    ],
)
def test_csv_mistakes(tmp_path: Path, rows: list[str], params: list[str], message: str) -> None:
    path = _write_csv(tmp_path / "d.csv", rows)
    with pytest.raises(ConfigError, match=message):
        train(tmp_path, "data=csv", f"data.path={path}", *params)
    assert not (tmp_path / "run").exists()  # nothing left behind for a mistake found while building
    with pytest.raises(ConfigError, match=r"data\.path: no such file or directory"):
        train(tmp_path, "data=csv", f"data.path={tmp_path / 'missing.csv'}")


def test_early_stopping_from_one_line(tmp_path: Path) -> None:
    # Nothing counts as an improvement after the first epoch, so patience 1 stops after the second.
    result = train(tmp_path, "early_stopping.patience=1", "early_stopping.min_delta=100")
    assert result.summary["epochs"] == 2


class _ConfigPlugin:
    @hookimpl
    def engine_adjust_config(self, config: dict) -> None:
        config["trainer"]["max_epochs"] = 1

    @hookimpl
    def engine_callbacks(self, config: dict) -> list:
        from lightning.pytorch.loggers import CSVLogger

        return [CSVLogger(config["run"]["dir"], name="extra", version="")]


def test_lifecycle_hooks_adjust_config_and_add_loggers(tmp_path: Path) -> None:
    reg = engine.get_registry(fresh=True)
    reg.manager.register(_ConfigPlugin(), PluginInfo("adjust", None, None, "tests"))
    result = train(tmp_path, reg=reg)
    assert result.summary["epochs"] == 1
    assert (tmp_path / "extra" / "metrics.csv").is_file()


class _Refuses(L.Callback):
    def check_run(self, trainer: Any, task: Any, datamodule: Any) -> None:
        assert task.model is not None and datamodule.facts["num_classes"] == 3  # the built run
        raise ConfigError("this model cannot train here", hint="use another")


class _RefusingPlugin:
    @hookimpl
    def engine_callbacks(self, config: dict) -> list:
        return [_Refuses()]


def test_a_callback_checking_the_built_run_leaves_nothing_behind(tmp_path: Path) -> None:
    reg = engine.get_registry(fresh=True)
    reg.manager.register(_RefusingPlugin(), PluginInfo("refuses", None, None, "tests"))
    with pytest.raises(ConfigError, match="this model cannot train here"):
        train(tmp_path, reg=reg)
    assert not (tmp_path / "run").exists()


def test_open_run_rebuilds_the_trained_task(tmp_path: Path) -> None:
    result = train(tmp_path, "trainer.max_epochs=2")
    opened = open_run(result.run_dir)
    assert opened.config["model"]["name"] == "core.mlp" and opened.facts["num_classes"] == 3
    task = opened.task()
    assert not task.training
    state = torch.load(opened.checkpoint(), weights_only=True)["state_dict"]
    for key, value in task.state_dict().items():
        assert torch.equal(value, state[key]), key
    dm = opened.datamodule()
    dm.setup("test")
    with torch.no_grad():
        hits = [(task(x).argmax(-1) == y).float() for x, y in dm.test_dataloader()]
    # The best checkpoint's weights on the same test split give the recorded test accuracy.
    assert torch.cat(hits).mean().item() == pytest.approx(result.summary["metrics"]["test/accuracy"], abs=1e-6)


def test_open_run_mistakes(tmp_path: Path) -> None:
    with pytest.raises(engine.EngineError, match="run directory not found"):
        open_run(tmp_path / "nope")
    with pytest.raises(engine.EngineError, match="not a run directory"):
        open_run(tmp_path)
    (tmp_path / "config.yaml").write_text("model: {name: mlp}\n")
    with pytest.raises(engine.EngineError, match="has no checkpoint"):
        open_run(tmp_path).checkpoint()


class _ArtifactSource:
    """The core's synthetic data, plus a file the run directory must keep."""

    def __init__(self) -> None:
        from engine._builtins.data import Synthetic

        self.inner = Synthetic(num_samples=200, num_features=7, num_classes=3)
        self.facts = self.inner.facts

    def datasets(self) -> dict:
        return self.inner.datasets()

    def save_artifacts(self, run_dir: Path) -> None:
        (run_dir / "vocab.txt").write_text("a b c\n")


class _ArtifactPlugin:
    @hookimpl
    def engine_data_sources(self) -> list:
        return [engine.Component("arty", _ArtifactSource, facts=("in_features", "out_features", "num_classes"))]


def test_data_source_saves_artifacts_into_the_run(tmp_path: Path) -> None:
    reg = engine.get_registry(fresh=True)
    reg.manager.register(_ArtifactPlugin(), PluginInfo("arty", None, None, "tests"))
    reg = type(reg)(reg.manager)  # re-read the declarations with the new plugin
    result = train(tmp_path, "data=arty.arty", "trainer.max_epochs=1", reg=reg)
    assert (result.run_dir / "vocab.txt").read_text() == "a b c\n"


class _StrictPlugin:
    @hookimpl
    def engine_adjust_config(self, config: dict) -> None:
        if config.get("seed") == 13:
            raise engine.ConfigError("seed 13 is unlucky", hint="choose another seed")


def test_a_config_error_from_a_plugin_reaches_the_user(tmp_path: Path) -> None:
    reg = engine.get_registry(fresh=True)
    reg.manager.register(_StrictPlugin(), PluginInfo("strict", None, None, "tests"))
    with pytest.raises(ConfigError, match="seed 13 is unlucky"):
        engine.compose(None, [], ["model=mlp", "data=synthetic", "seed=13"], registry=reg)
    assert reg.manager.plugins["strict"].status == "ok"  # the user's mistake, not a broken plugin
