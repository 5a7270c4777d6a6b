"""engine-privacy: the conformance kit, DP-SGD through Lightning, the epsilon reported, what is refused."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any

import pytest

from engine import ConfigError

#: As in conftest.py: a small feature-vector task the core's mlp learns in a few epochs (LayerNorm: fine for DP).
TINY = ["model=mlp", "model.hidden=[32]", "data=synthetic", "data.num_samples=400", "data.num_features=8"]


def test_plugin_passes_the_conformance_kit(engine_check: Any) -> None:
    passed = engine_check("privacy")
    assert passed == ["section 'privacy' imports", "section 'privacy' parameters"]


def test_the_section_is_typed_and_off_until_set() -> None:
    import engine

    assert engine.plan(engine.compose(overrides=TINY)).config["privacy"] is None
    cfg = engine.plan(engine.compose(overrides=[*TINY, "privacy.noise_multiplier=1.1"])).config
    assert cfg["privacy"] == {
        "noise_multiplier": 1.1,
        "target_epsilon": None,
        "delta": None,
        "max_grad_norm": 1.0,
        "accountant": "prv",
    }


def _summary(run: Path) -> dict[str, Any]:
    return json.loads((run / "summary.json").read_text())


@pytest.mark.slow
def test_epsilon_is_reported_and_matches_opacus_accountant(dp_run: Path) -> None:
    from opacus.accountants import create_accountant

    s = _summary(dp_run)
    p = s["privacy"]
    assert p["steps"] == s["global_step"] == p["planned_steps"]
    assert p["dataset_size"] == 280 and p["delta"] == pytest.approx(1 / 280)  # default delta: 1/N
    assert p["sample_rate"] == pytest.approx(1 / 5) and p["expected_batch_size"] == 56  # 280 samples, batches of 64
    # the engine's epsilon is Opacus' PRV accountant for the same noise, sampling rate and steps
    direct = create_accountant("prv")
    direct.history = [(p["noise_multiplier"], p["sample_rate"], p["steps"])]
    assert p["epsilon"] == pytest.approx(direct.get_epsilon(delta=p["delta"]), rel=1e-6)
    assert 3.9 <= p["epsilon"] <= 4.0  # the noise was chosen to spend the target (Opacus' search, tolerance 0.01)
    # per epoch, growing; in the metrics (the end-of-run table) and at the best checkpoint
    eps = [e["epsilon"] for e in p["epochs"]]
    assert len(eps) == 3 and eps == sorted(eps) and eps[-1] == pytest.approx(p["epsilon"], abs=1e-5)
    assert s["metrics"]["val/epsilon"] == pytest.approx(p["epsilon"], rel=1e-5)
    at_best = next(e["epsilon"] for e in p["epochs"] if e["step"] == s["best_step"])
    assert s["best_metrics"]["val/epsilon"] == pytest.approx(at_best, abs=1e-5)  # the epsilon of the best weights
    with (dp_run / "csv" / "0" / "metrics.csv").open() as fh:
        logged = [float(r["val/epsilon"]) for r in csv.DictReader(fh) if r.get("val/epsilon")]
    assert logged == pytest.approx(eps, abs=1e-4)


@pytest.mark.slow
def test_a_private_run_is_a_plain_run_afterwards(dp_run: Path) -> None:
    import torch

    from engine.runs import open_run

    model = open_run(dp_run).model()  # plain state dict: no GradSampleModule prefix, no Opacus attributes
    assert not hasattr(next(model.parameters()), "grad_sample")
    assert all(not hasattr(m, "autograd_grad_sample_hooks") for m in model.modules())
    assert model(torch.randn(3, 8)).shape == (3, 4)
    s = _summary(dp_run)
    assert s["status"] == "completed" and s["metrics"]["val/accuracy"] > 0.4  # 4 classes: it learned


@pytest.mark.slow
def test_resuming_keeps_counting_the_epsilon(train: Any, tmp_path: Path) -> None:
    overrides = [*TINY, "privacy.noise_multiplier=1.0", "privacy.accountant=rdp"]
    straight = _summary(train(*overrides, "trainer.max_epochs=2", root=tmp_path, name="straight").run_dir)["privacy"]
    first = train(*overrides, "trainer.max_epochs=1", root=tmp_path, name="resumed").run_dir
    assert _summary(first)["privacy"]["steps"] == 5
    again = train(*overrides, "trainer.max_epochs=2", root=tmp_path, name="resumed", resume=first)
    resumed = _summary(again.run_dir)["privacy"]
    assert resumed["steps"] == straight["steps"] == 10
    assert resumed["epsilon"] == pytest.approx(straight["epsilon"], rel=1e-9)
    assert [e["epoch"] for e in resumed["epochs"]] == [0, 1]


def test_testing_an_earlier_best_checkpoint_does_not_roll_back_the_epsilon_spent() -> None:
    """The test stage restores the best checkpoint's callback state; the budget spent stays the whole run's."""
    from engine_privacy.callback import DPSGD

    dp = DPSGD(noise_multiplier=1.0, accountant="rdp")
    dp.load_state_dict({"history": [[1.0, 0.1, 300]], "epochs": [{"epoch": 29, "step": 300, "epsilon": 9.0}]})
    spent = dp.epsilon()
    best = {"history": [[1.0, 0.1, 290]], "epochs": [{"epoch": 28, "step": 290, "epsilon": 8.0}]}
    dp.load_state_dict(best)  # what trainer.test(ckpt_path="best") does to the callback
    assert dp.steps_taken == 300 and dp.epsilon() == pytest.approx(spent)
    assert [e["epoch"] for e in dp.epochs] == [29]


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["model=vision.cnn", "data=vision.digits", "model.norm=batch"], "model.norm=group"),
        (["model=vision.resnet", "data=vision.digits"], "uses BatchNorm"),
        (["model=vision.vit", "data=vision.digits"], "MultiheadAttention"),
        (["model=nlp.lstm_classifier", "data=nlp.text_classification"], "DPLSTM"),
        (["model=speech.kws_cnn", "data=speech.spoken_digits"], "model.norm=group"),
        ([*TINY, "privacy.target_epsilon=0"], "privacy.target_epsilon must be float > 0"),
        ([*TINY, "privacy.target_epsilon=-3"], "privacy.target_epsilon must be float > 0"),
        ([*TINY, "privacy.target_epsilon=3", "privacy.delta=1"], "privacy.delta must be float in (0, 1)"),
        ([*TINY, "privacy.target_epsilon=3", "privacy.delta=1.5"], "privacy.delta must be float in (0, 1)"),
        ([*TINY, "privacy.max_grad_norm=1"], "set privacy.noise_multiplier or privacy.target_epsilon"),
        ([*TINY, "privacy.target_epsilon=3", "privacy.noise_multiplier=1"], "both set"),
        ([*TINY, "privacy.noise_multiplier=1", "trainer.accumulate_grad_batches=4"], "accumulate_grad_batches"),
        ([*TINY, "privacy.noise_multiplier=1", "trainer.gradient_clip_val=1"], "gradient_clip_val"),
        ([*TINY, "privacy.noise_multiplier=1", "trainer.devices=2"], "several processes"),
        ([*TINY, "privacy.noise_multiplier=1", "trainer.precision=16-mixed"], "GradScaler"),
        ([*TINY, "privacy.noise_multiplier=1", "prune.amount=0.5"], "cannot be combined with prune"),
        ([*TINY, "privacy.target_epsilon=3", "trainer.max_epochs=-1"], "planned length"),
        ([*TINY, "privacy.noise_multiplier=1", "model.freeze=[net.0.*]", "model.unfreeze_at_epoch=1"], "unfreeze"),
    ],
)
def test_refused_at_dry_run_in_one_line(cli: Any, overrides: list[str], message: str) -> None:
    if not any(o.startswith("privacy.") for o in overrides):
        overrides = [*overrides, "privacy.noise_multiplier=1"]
    r = cli("run", *overrides, "--dry-run")
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()  # the error on one line (and a hint on a second)
    assert r.stdout == "" and lines[0].startswith("error: ") and len(lines) <= 2 and message in r.stderr
    assert len(lines) == 1 or lines[1].startswith("  hint: ")


def test_group_norm_models_pass_the_dry_run(cli: Any) -> None:
    args = ["model=vision.cnn", "model.norm=group", "data=vision.digits", "privacy.noise_multiplier=1", "--dry-run"]
    r = cli("run", *args)
    assert r.returncode == 0, r.stderr


def test_only_the_supervised_task() -> None:
    from engine_privacy.spec import check_privacy

    values = {"noise_multiplier": 1.0, "target_epsilon": None, "delta": None, "max_grad_norm": 1.0}
    with pytest.raises(ConfigError, match="works with the supervised task"):
        check_privacy(values, "privacy", {"task": {"name": "gan.adversarial"}, "trainer": {}})


def test_static_scan_sees_the_layers_opacus_refuses() -> None:
    from engine_privacy.static import layers_used

    assert layers_used("core.mlp") == []
    assert layers_used("nlp.transformer_classifier") == []  # attention from nn.Linear layers: fine
    assert "TransformerEncoderLayer" in layers_used("vision.vit")
    assert layers_used("nlp.lstm_classifier") == ["LSTM"]


def test_the_built_model_is_validated_with_opacus_rules() -> None:
    from engine_privacy.validate import check_trainable
    from torch import nn

    check_trainable(nn.Sequential(nn.Linear(4, 8), nn.GroupNorm(2, 8), nn.Linear(8, 2)))
    with pytest.raises(ConfigError, match=r"1 \(BatchNorm1d\).*DP-SGD") as info:
        check_trainable(nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.Linear(8, 2)))
    assert "GroupNorm" in (info.value.hint or "")


def test_poisson_batches_vary_average_the_batch_size_and_replay_per_epoch() -> None:
    from engine_privacy.sampling import EpochPoissonSampler

    epoch = [0]
    sampler = EpochPoissonSampler(num_samples=1000, sample_rate=0.05, seed=3, epoch=lambda: epoch[0])
    first = list(sampler)
    sizes = [len(b) for b in first]
    assert len(first) == 20 and len(set(sizes)) > 3 and abs(sum(sizes) / 20 - 50) < 10
    assert list(sampler) == first  # the same epoch draws the same batches (a resumed run)
    epoch[0] = 1
    assert list(sampler) != first


def test_each_samples_gradient_is_clipped(tmp_path: Path) -> None:
    """With no noise and plain SGD, an update is the mean of clipped per-sample gradients: its norm is bounded."""
    import lightning as L
    import torch
    from engine_privacy.callback import DPSGD

    import engine
    from engine.data import SourceDataModule
    from engine.tasks import SupervisedTask

    clip, lr, steps = 0.01, 1.0, []

    class Probe(L.Callback):
        def on_train_batch_start(self, trainer: Any, module: Any, batch: Any, i: int) -> None:
            self.before = torch.cat([p.detach().flatten().clone() for p in module.parameters()])
            self.size = len(batch[0])

        def on_train_batch_end(self, trainer: Any, module: Any, out: Any, batch: Any, i: int) -> None:
            after = torch.cat([p.detach().flatten() for p in module.parameters()])
            steps.append(((after - self.before).norm().item(), self.size))

    model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 4))
    task = SupervisedTask(model, None, lambda params: torch.optim.SGD(params, lr=lr), num_classes=4)
    data = SourceDataModule(engine.create("data", "synthetic", num_samples=400, num_features=8), batch_size=32)
    dp = DPSGD(noise_multiplier=1e-9, max_grad_norm=clip, accountant="rdp")
    trainer = L.Trainer(max_epochs=1, callbacks=[dp, Probe()], logger=False, enable_checkpointing=False,
                        enable_progress_bar=False, enable_model_summary=False, limit_val_batches=0)  # fmt: skip
    trainer.fit(task, datamodule=data)
    expected = dp.expected_batch_size
    assert len(steps) == dp.steps_per_epoch and len({n for _, n in steps}) > 1  # Poisson: sizes vary
    assert all(0 < norm <= lr * clip * n / expected * 1.001 for norm, n in steps)
    assert "train_dataloader" not in vars(data)  # the datamodule is given back its own loader
    assert math.isfinite(dp.epsilon()) or dp.epsilon() == math.inf


def test_what_the_source_scan_misses_is_refused_before_the_run_directory_exists(
    cli: Any, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import engine_privacy.static

    monkeypatch.setattr(engine_privacy.static, "check_model", lambda model, where: None)  # as if it were unreadable
    args = ["model=vision.cnn", "model.width=4", "model.stages=1", "data=vision.digits", "privacy.noise_multiplier=1"]
    r = cli("run", *args, "trainer.max_epochs=1", f"run.dir={tmp_path}", "run.name=bn")
    assert r.returncode == 2
    assert (
        "error: privacy: Opacus cannot train model.features." in r.stderr and "(BatchNorm2d) (and 1 more)" in r.stderr
    )
    assert "GroupNorm" in r.stderr
    assert not (tmp_path / "bn").exists()  # refused once built, before anything is written
