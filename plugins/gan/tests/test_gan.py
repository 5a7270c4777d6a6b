"""engine-gan: conformance, models, the adversarial task on a ring, the sample command, divergence, bad input."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path
from typing import Any

import pytest
import torch

import engine
from engine import ConfigError, EngineError
from engine.testing import run_cli, train_run

HAS_VISION = importlib.util.find_spec("engine_vision") is not None


def _run(root: Path, name: str, overrides: list[str], recipe: str | None = None) -> Any:
    return train_run(*overrides, root=root, name=name, recipe=recipe)


# --------------------------------------------------------------------------- conformance


def test_conformance(engine_check: Any) -> None:
    # Generators take latent noise, not data batches, so the kit's model check does not apply to them
    # (they are tested below); discriminators are checked on 8x8 images.
    passed = engine_check(
        "gan",
        facts={"input_shape": [1, 8, 8], "in_features": 64},
        skip=("gan.mlp_generator", "gan.dcgan_generator"),
    )
    assert any("gan.adversarial" in p and "fast_dev_run" in p for p in passed)
    assert any("gan/ring8" in p and "fast_dev_run" in p for p in passed)


# --------------------------------------------------------------------------- models


@pytest.mark.parametrize("shape", [[1, 8, 8], [1, 28, 28], [3, 32, 32], [1, 12, 16]])
def test_dcgan_sizes(shape: list[int]) -> None:
    from engine_gan.models import DCGANDiscriminator, DCGANGenerator

    g = DCGANGenerator(shape, latent_dim=8, width=4)
    d = DCGANDiscriminator(shape, width=4)
    x = g(torch.randn(3, 8))
    assert list(x.shape) == [3, *shape]
    assert x.abs().max() <= 1
    assert d(x).shape == (3,)


@pytest.mark.parametrize(("shape", "words"), [([1, 9, 9], "cannot produce 9x9"), ([2], "needs image data")])
def test_dcgan_refuses_bad_sizes(shape: list[int], words: str) -> None:
    from engine_gan.models import DCGANGenerator

    with pytest.raises(ConfigError, match=words):
        DCGANGenerator(shape)


def test_mlp_models() -> None:
    from engine_gan.models import MLPDiscriminator, MLPGenerator

    g = MLPGenerator(5, latent_dim=3, hidden=[8], output="tanh")
    assert g(torch.randn(4, 3)).shape == (4, 5)
    assert MLPDiscriminator(5, hidden=[8], spectral_norm=True)(torch.randn(4, 5)).shape == (4,)


def test_mixture_data() -> None:
    from engine_gan.data import GaussianMixture

    ring = GaussianMixture(num_samples=4000)
    x, y = ring.datasets()["train"][:]
    modes = torch.tensor(ring.facts["modes"])
    assert len(modes) == 8 and torch.allclose(modes.norm(dim=1), torch.full((8,), 2.0))
    assert (x - modes[y]).std() == pytest.approx(0.02, rel=0.1)
    grid = GaussianMixture(layout="grid")
    assert len(grid.facts["modes"]) == 25 and max(max(m) for m in grid.facts["modes"]) == 4.0


def test_metrics_on_true_samples() -> None:
    from engine_gan.data import GaussianMixture
    from engine_gan.metrics import ModeCoverage

    ring = GaussianMixture(num_samples=2500)
    metric = ModeCoverage(ring.facts["modes"], 0.02)
    metric.update(ring.datasets()["train"][:][0])
    out = metric.compute()
    assert out["modes"] == 8 and out["hq"] > 0.98
    collapsed = ModeCoverage(ring.facts["modes"], 0.02)
    collapsed.update(torch.tensor([[2.0, 0.0]]).repeat(2500, 1))
    assert collapsed.compute()["modes"] == 1


# --------------------------------------------------------------------------- training on the ring


@pytest.fixture(scope="module")
def ring_run(tmp_path_factory: pytest.TempPathFactory) -> Any:
    root = tmp_path_factory.mktemp("runs")
    return _run(
        root,
        "ring",
        [
            "task.num_eval_samples=1000",
            "data.std=0.1",  # modes 5x wider than the recipe's: a 200-batch run covers several
            "data.num_samples=25600",
            "data.batch_size=256",
            "data.val_samples=1000",
            "data.test_samples=1000",
            "trainer.max_epochs=2",
        ],
        recipe="gan/ring8",
    )


@pytest.fixture(scope="module")
def tiny_ring(tmp_path_factory: pytest.TempPathFactory) -> Any:
    """A few batches of gan/ring8: a trained GAN run for the commands, quality aside."""
    root = tmp_path_factory.mktemp("runs")
    overrides = ["task.num_eval_samples=1000", "data.num_samples=1024", "data.batch_size=256", "trainer.max_epochs=1"]
    return _run(root, "tiny", [*overrides, "data.val_samples=1000", "data.test_samples=1000"], recipe="gan/ring8")


@pytest.mark.slow
def test_ring8_short_run_covers_several_modes(ring_run: Any) -> None:
    m = ring_run.summary["metrics"]
    assert ring_run.summary["status"] == "completed"
    assert m["val/modes"] >= 3, m
    assert (ring_run.run_dir / "checkpoints" / "best.ckpt").is_file()


def test_sample_command_writes_scatter_png(tiny_ring: Any, tmp_path: Path, cli: Any) -> None:
    from PIL import Image

    out = tmp_path / "ring.png"
    res = cli("sample", str(tiny_ring.run_dir), "--n", "500", "--out", str(out))
    assert res.returncode == 0, res.stderr
    assert "500 points" in res.stdout
    img = Image.open(out)
    assert img.size == (640, 640)
    blue = sum(1 for p in img.getdata() if p == (30, 90, 200))
    assert blue > 100  # the samples are drawn


def test_sample_command_bad_input(tiny_ring: Any, tmp_path: Path, cli: Any) -> None:
    res = cli("sample", str(tmp_path / "nope"), "--out", str(tmp_path / "x.png"))
    assert res.returncode == 2 and "run directory not found" in res.stderr
    res = cli("sample", str(tiny_ring.run_dir), "--out", str(tmp_path / "x.jpg"))
    assert res.returncode == 2 and ".png" in res.stderr
    assert "Traceback" not in res.stderr


def test_sample_help() -> None:
    res = run_cli("sample", "--help")  # the installed command
    assert res.returncode == 0 and "--n" in res.stdout and "scatter" in res.stdout


# --------------------------------------------------------------------------- images


@pytest.mark.skipif(not HAS_VISION, reason="needs engine-vision")
def test_digits_dcgan_and_image_grid(tmp_path: Path, cli: Any) -> None:
    from PIL import Image

    result = _run(
        tmp_path,
        "digits",
        [
            "trainer.max_epochs=1",
            "trainer.limit_train_batches=3",
            "trainer.limit_val_batches=2",
            "trainer.limit_test_batches=2",
            "task.num_eval_samples=1000",
            "generator.width=8",
            "discriminator.width=8",
        ],
        recipe="gan/digits",
    )
    assert "val/mmd" in result.summary["metrics"]
    out = tmp_path / "grid.png"
    res = cli("sample", str(result.run_dir), "--n", "16", "--out", str(out))
    assert res.returncode == 0, res.stderr
    img = Image.open(out)
    assert img.mode == "L" and img.size == ((4 * 10 + 2) * 6, (4 * 10 + 2) * 6)


def test_gan_check_leaves_a_chosen_monitor_and_mixture_data_implies_the_task() -> None:
    cfg = engine.plan(engine.compose(None, overrides=["data=gan.gaussian_mixture"])).config
    assert cfg["task"]["name"] == "gan.adversarial"
    assert cfg["checkpoint"]["monitor"] == "val/score" and cfg["checkpoint"]["mode"] == "max"
    chosen = ["data=gan.gaussian_mixture", "checkpoint.monitor=val/modes", "checkpoint.mode=max"]
    cfg = engine.plan(engine.compose(None, overrides=chosen)).config
    assert cfg["checkpoint"]["monitor"] == "val/modes"
    assert engine.plan(cfg).config == cfg  # the resolved config plans to itself


@pytest.mark.skipif(not HAS_VISION, reason="needs engine-vision")
def test_digits_with_default_models_validates() -> None:
    cfg = engine.plan(engine.compose(None, overrides=["data=vision.digits", "task=gan.adversarial"])).config
    assert cfg["generator"]["name"] == "gan.mlp_generator" and cfg["checkpoint"]["monitor"] == "val/score"


def test_data_range_from_preprocessing() -> None:
    from engine_gan.evaluation import data_bounds

    pre = {"value_range": [0, 16], "scale": 1 / 16, "mean": [0.25], "std": [0.5]}
    lo, hi = data_bounds(None, pre, [1, 8, 8])
    assert float(lo) == pytest.approx(-0.5) and float(hi) == pytest.approx(1.5)
    assert data_bounds(None, {"mean": [0.0], "std": [1.0]}, [2]) is None  # no value range: unbounded


# --------------------------------------------------------------------------- bad input and divergence


class _Labels(torch.utils.data.Dataset):
    def __len__(self) -> int:
        return 8

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return torch.tensor(i % 3), torch.tensor(i % 3)


def _task(**kwargs: Any) -> Any:
    from engine_gan.models import MLPDiscriminator, MLPGenerator
    from engine_gan.task import AdversarialTask

    adam = lambda params: torch.optim.Adam(params)  # noqa: E731
    return AdversarialTask(MLPGenerator(2, hidden=[8]), MLPDiscriminator(2, hidden=[8]), adam, adam, **kwargs)


def test_labels_only_data_is_refused_before_compute() -> None:
    from engine.data import DataSource, SourceDataModule

    class Labels(DataSource):
        def datasets(self) -> dict[str, Any]:
            return {"train": _Labels()}

    with pytest.raises(ConfigError, match=r"real-valued inputs.*int64"):
        _task().check_data(SourceDataModule(Labels()))


def test_task_parameter_errors() -> None:
    with pytest.raises(ConfigError, match="d_steps"):
        _task(d_steps=0)
    with pytest.raises(ConfigError, match="num_eval_samples"):
        _task(num_eval_samples=10)


def test_cli_bad_input_is_one_line(cli: Any) -> None:
    res = cli("run", "task=gan.adversarial", "data=gan.gaussian_mixture", "generator=gan.dcgan_generator")
    assert res.returncode == 2
    assert "needs image data" in res.stderr and "Traceback" not in res.stderr
    res = cli("run", "task=gan.adversarial", "data=gan.gaussian_mixture", "task.loss=lsgan", "--dry-run")
    assert res.returncode == 2 and "task.loss" in res.stderr


def test_divergence_stops_with_message_and_keeps_last_good_checkpoint(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from engine_gan.task import AdversarialTask

    original = AdversarialTask._d_loss

    def poisoned(self: Any, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        loss = original(self, real, fake)
        return loss * float("nan") if self.current_epoch >= 1 else loss

    monkeypatch.setattr(AdversarialTask, "_d_loss", poisoned)
    with pytest.raises(EngineError, match=r"diverged.*discriminator loss is nan.*last good checkpoint"):
        _run(
            tmp_path,
            "nan",
            [
                "task=gan.adversarial",
                "data=gan.gaussian_mixture",
                "data.num_samples=640",
                "data.val_samples=1000",
                "data.test_samples=0",
                "task.num_eval_samples=1000",
                "generator.hidden=[16]",
                "discriminator.hidden=[16]",
                "trainer.max_epochs=3",
            ],
        )
    run_dir = tmp_path / "nan"
    import json

    summary = json.loads((run_dir / "summary.json").read_text())
    assert summary["status"] == "failed" and "diverged" in summary["error"]
    state = torch.load(run_dir / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)["state_dict"]
    assert all(torch.isfinite(v).all() for v in state.values() if torch.is_floating_point(v))
    assert state and not math.isnan(float(next(iter(state.values())).float().sum()))
