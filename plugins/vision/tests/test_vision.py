"""Tests of the vision plugin: conformance, models, data sources, augmentation, bad input, commands."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import engine
from engine import ConfigError, EngineError
from engine.testing import run_cli, train_run

ONE_THREAD = {"OMP_NUM_THREADS": "1"}  # subprocesses: oversubscribed threads crawl on a shared 2-core machine


def train(overrides: list[str], run_dir: Path) -> dict[str, Any]:
    """Compose, plan and train a quiet run in-process; return the summary."""
    return train_run(*overrides, root=run_dir).summary


# --------------------------------------------------------------------------- conformance


def test_conformance(engine_check: Any, shapes_dir: Path, coco_dir: Path, voc_dir: Path) -> None:
    passed = engine_check(
        "vision",
        data_params={
            "vision.image_folder": {"root": str(shapes_dir)},
            "vision.coco": {"annotations": str(coco_dir / "annotations.json"), "image_size": 32},
            "vision.voc": {"root": str(voc_dir), "image_size": 32},
            "vision.shapes_detect": {"num_images": 40},
        },
        task_overrides={
            "vision.detection": ["model=vision.detector", "data=vision.shapes_detect", "data.num_images=40"]
        },
    )
    assert "model 'vision.vit' forward/backward" in passed
    assert "model 'vision.detector' forward/backward" in passed
    assert "recipe 'vision/digits' completes fast_dev_run" in passed
    assert "recipe 'vision/shapes-detect' completes fast_dev_run" in passed
    assert "task 'vision.detection' completes fast_dev_run" in passed
    assert "data 'vision.coco' builds and yields batches" in passed


def test_listing_and_dry_run_stay_torch_free() -> None:
    code = (
        "import sys, engine\n"
        "assert 'vision.resnet' in engine.list_components('model')\n"
        "engine.plan(engine.compose('vision/digits', overrides=['data.augment.rotate=10']))\n"
        "heavy = [m for m in ('torch', 'numpy', 'sklearn', 'PIL') if m in sys.modules]\n"
        "assert not heavy, heavy\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


# --------------------------------------------------------------------------- models


@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("cnn", {}),
        ("cnn", {"upsample": 2, "stages": 2}),
        ("resnet", {"depth": 18, "width": 8}),
        ("resnet", {"depth": 34, "width": 4}),
        ("resnet", {"depth": 50, "width": 4}),
        ("resnet", {"depth": 18, "width": 4, "stem": "imagenet"}),
        ("vit", {"depth": 1, "width": 32, "heads": 2}),
        ("vit", {"patch_size": 4, "depth": 1, "width": 16, "heads": 4, "pool": "mean"}),
    ],
)
@pytest.mark.parametrize("shape", [[1, 8, 8], [3, 32, 32]])
def test_models_shapes(name: str, params: dict[str, Any], shape: list[int]) -> None:
    model = engine.create("model", f"vision.{name}", input_shape=shape, num_classes=5, **params)
    out = model(torch.randn(2, *shape))
    assert out.shape == (2, 5)


def test_vit_patch_size_must_divide_image() -> None:
    with pytest.raises(ConfigError, match="patch_size 3 does not divide the image size 8x8"):
        engine.create("model", "vision.vit", input_shape=[1, 8, 8], num_classes=10, patch_size=3)


def test_vit_default_patch_gives_8x8_tokens() -> None:
    model = engine.create("model", "vision.vit", input_shape=[3, 32, 32], num_classes=2, depth=1, width=16, heads=2)
    assert model.patch_size == 4


def test_model_needs_image_shape() -> None:
    with pytest.raises(ConfigError, match=r"input_shape must be \[channels, height, width\]"):
        engine.create("model", "vision.resnet", input_shape=[64], num_classes=3)


@pytest.mark.slow
@pytest.mark.parametrize(
    ("model", "floor"),
    [
        (["model=vision.resnet", "model.width=16", "optimizer.lr=0.003", "trainer.max_epochs=3"], 0.8),
        (
            [
                "model=vision.vit",
                "model.patch_size=2",
                "model.depth=2",
                "model.width=64",
                "model.heads=4",
                "optimizer.lr=0.002",
                "trainer.max_epochs=6",
            ],
            0.6,
        ),
    ],
    ids=["resnet", "vit"],
)
def test_trains_on_digits_well_above_chance(model: list[str], floor: float, tmp_path: Path) -> None:
    summary = train([*model, "data=vision.digits", "data.batch_size=32"], tmp_path)
    assert summary["status"] == "completed"
    print(f"{model[0]}: test accuracy {summary['metrics']['test/accuracy']:.4f}")
    assert summary["metrics"]["test/accuracy"] > floor  # chance is 0.1


# --------------------------------------------------------------------------- data sources


def test_digits_facts_and_split() -> None:
    from engine_vision.data import Digits

    src = Digits(val_fraction=0.1, seed=3)
    facts = src.facts
    assert facts["input_shape"] == [1, 8, 8] and facts["in_channels"] == 1 and facts["image_size"] == [8, 8]
    assert facts["num_classes"] == 10 and facts["class_names"] == [str(i) for i in range(10)]
    json.dumps(facts["preprocessing"])  # JSON-able, so deployment can record it
    sizes = {k: len(v) for k, v in src.index.items()}
    assert sum(sizes.values()) == 1797
    assert abs(sizes["test"] - 0.2 * 1797) < 6 and abs(sizes["val"] - 0.1 * 1797) < 6
    test_labels = src.y[src.index["test"]]
    assert set(torch.bincount(test_labels, minlength=10).tolist()) <= {35, 36, 37}  # stratified
    assert torch.equal(Digits(seed=3).index["test"], src.index["test"])  # seeded
    assert not torch.equal(Digits(seed=4).index["test"], src.index["test"])
    train = src.x[src.index["train"]]
    assert abs(float(train.mean())) < 1e-4 and abs(float(train.std(unbiased=False)) - 1) < 1e-3


def test_digits_load_input_matches_dataset(tmp_path: Path) -> None:
    from engine_vision.data import Digits
    from PIL import Image
    from sklearn.datasets import load_digits

    src = Digits()
    image = load_digits().images[5]
    np.save(tmp_path / "five.npy", image)
    assert torch.allclose(src.load_input(tmp_path / "five.npy"), src.x[5], atol=1e-6)
    # An image file, dark ink on white paper, 4x larger: inverted and resized to the data's convention.
    paper = (255 - image * 255 / 16).astype(np.uint8)
    Image.fromarray(paper, "L").resize((32, 32), Image.Resampling.NEAREST).save(tmp_path / "five.png")
    x = src.load_input(tmp_path / "five.png")
    assert x.shape == (1, 8, 8) and torch.corrcoef(torch.stack([x.flatten(), src.x[5].flatten()]))[0, 1] > 0.95
    np.save(tmp_path / "bad.npy", np.zeros((4, 4)))
    with pytest.raises(EngineError, match=r"8x8 arrays"):
        src.load_input(tmp_path / "bad.npy")


def test_image_folder_facts_splits_and_load_input(shapes_dir: Path) -> None:
    from engine_vision.data import ImageFolder

    src = ImageFolder(root=str(shapes_dir), image_size=12, seed=1)
    facts = src.facts
    assert facts["class_names"] == ["circle", "square", "triangle"]
    assert facts["input_shape"] == [3, 12, 12] and facts["in_channels"] == 3
    assert facts["preprocessing"]["resize"] == [12, 12] and len(facts["preprocessing"]["mean"]) == 3
    json.dumps(facts)
    assert {k: len(v) for k, v in src.index.items()} == {"train": 51, "val": 6, "test": 15}
    i = int(src.index["test"][0])
    assert torch.allclose(src.load_input(src.files[i]), src.x[i], atol=1e-5)
    grey = ImageFolder(root=str(shapes_dir), channels=1, mean=[0.5], std=[0.25])
    assert grey.facts["input_shape"] == [1, 16, 16] and grey.mean.tolist() == [0.5]


def test_image_folder_separate_roots(shapes_dir: Path, tmp_path: Path) -> None:
    from engine_vision.data import ImageFolder
    from engine_vision.shapes import write_shapes

    test_root = write_shapes(tmp_path / "test", per_class=4, size=16, classes=2, seed=9)
    src = ImageFolder(train_root=str(shapes_dir), test_root=str(test_root), val_fraction=0.25)
    sizes = {k: len(v) for k, v in src.index.items()}
    assert sizes == {"train": 54, "val": 18, "test": 8}
    assert sorted(src.y[src.index["test"]].tolist()) == [0] * 4 + [1] * 4


def test_image_folder_run_from_cli(shapes_dir: Path, tmp_path: Path, cli: Any) -> None:
    out = cli(
        "run",
        "model=vision.resnet",
        "model.width=8",
        "data=vision.image_folder",
        f"data.root={shapes_dir}",
        "data.augment.hflip=true",
        "data.augment.rotate=10",
        "trainer.max_epochs=2",
        f"run.dir={tmp_path}",
        "trainer.enable_progress_bar=false",
    )
    assert out.returncode == 0, out.stderr
    assert "test/accuracy" in out.stdout
    facts = json.loads(next(tmp_path.glob("*/facts.json")).read_text())
    assert facts["input_shape"] == [3, 16, 16] and facts["class_names"] == ["circle", "square", "triangle"]


# --------------------------------------------------------------------------- augmentation


def test_augmentation_deterministic_per_seed_and_epoch() -> None:
    from engine_vision.augment import AugmentedDataset
    from engine_vision.data import Digits

    spec = {"rotate": 15, "shift": 0.1, "scale": [0.9, 1.1], "noise": 0.05, "erase": 0.3}
    a, b, c = (Digits(seed=s, augment=spec).datasets()["train"] for s in (0, 0, 1))
    assert isinstance(a, AugmentedDataset)
    assert torch.equal(a[7][0], b[7][0]) and torch.equal(a[7][0], a[7][0])  # same seed, same draw
    assert not torch.equal(a[7][0], c[7][0]) or not torch.equal(a.x[7], c.x[7])
    first = a[7][0]
    a.set_epoch(1)
    assert not torch.equal(a[7][0], first)  # a new epoch, a new draw
    b.set_epoch(1)
    assert torch.equal(a[7][0], b[7][0])
    assert not torch.equal(first, a.x[7])  # it does change the image


def test_augmentation_train_only() -> None:
    from engine_vision.data import Digits

    from engine.data import ArrayDataset

    plain = Digits(seed=0).datasets()
    aug = Digits(seed=0, augment={"rotate": 20, "noise": 0.1}).datasets()
    for split in ("val", "test"):
        assert type(aug[split]) is ArrayDataset
        assert torch.equal(aug[split][3][0], plain[split][3][0])
    assert not torch.equal(aug["train"][3][0], plain["train"][3][0])
    assert torch.equal(aug["train"][3][1], plain["train"][3][1])


def test_augmentation_ops() -> None:
    from engine_vision.augment import Augment

    x = torch.arange(16.0).view(1, 4, 4)
    g = torch.Generator().manual_seed(0)
    assert torch.equal(Augment({})(x, g), x)
    flips = {tuple(Augment({"hflip": True})(x, torch.Generator().manual_seed(s)).flatten().tolist()) for s in range(8)}
    assert flips == {tuple(x.flatten().tolist()), tuple(x.flip(-1).flatten().tolist())}
    # A pure shift fills uncovered pixels with the blank value.
    shifted = Augment({"shift": 0.5}, fill=-7.0)(torch.zeros(1, 8, 8), torch.Generator().manual_seed(1))
    assert shifted.min() < -1 and shifted.max() <= 1e-6


def test_augmented_runs_are_reproducible(tmp_path: Path) -> None:
    cfg = [
        "model=vision.cnn",
        "model.width=4",
        "model.stages=1",
        "data=vision.digits",
        "data.augment.rotate=10",
        "data.augment.shift=0.1",
        "trainer.max_epochs=2",
        "trainer.limit_train_batches=3",
        "trainer.limit_val_batches=1",
    ]
    a, b = train(cfg, tmp_path / "a"), train(cfg, tmp_path / "b")
    assert a["status"] == b["status"] == "completed" and a["epochs"] == 2
    assert a["metrics"]["test/loss"] == b["metrics"]["test/loss"]


@pytest.mark.parametrize(
    ("augment", "message"),
    [
        ({"rotat": 10}, "unknown augmentation 'data.augment.rotat' — did you mean 'rotate'?"),
        ({"shift": 1.5}, "data.augment.shift must be max translation"),
        ({"scale": [1.2, 0.8]}, "data.augment.scale must be zoom range"),
        ({"hflip": 1.0}, "data.augment.hflip must be"),
    ],
)
def test_bad_augmentation(augment: dict[str, Any], message: str) -> None:
    from engine_vision.data import Digits

    with pytest.raises(ConfigError, match=message):
        Digits(augment=augment)
    # the same mistake is caught by the data source's check when the run is planned, so --dry-run reports it too
    overrides = [f"data.augment.{k}={v}".replace(" ", "") for k, v in augment.items()]
    with pytest.raises(ConfigError, match=message):
        engine.plan(engine.compose("vision/digits", overrides=overrides))


# --------------------------------------------------------------------------- bad input


def _error_line(out: subprocess.CompletedProcess) -> str:
    assert out.returncode == 2, (out.stdout, out.stderr)
    assert "Traceback" not in out.stderr
    lines = out.stderr.strip().splitlines()
    assert lines[0].startswith("error: ")
    return lines[0]


def _main_error(cli: Any, *args: str) -> str:
    """Run ``engine ARGS`` in-process (faster than a subprocess); return its one-line error."""
    out = cli(*args)
    return _error_line(subprocess.CompletedProcess(list(args), out.returncode, out.stdout, out.stderr))


def test_empty_image_folder(tmp_path: Path, cli: Any) -> None:
    from engine_vision.data import ImageFolder

    (tmp_path / "cats").mkdir()
    (tmp_path / "dogs").mkdir()
    (tmp_path / "dogs" / "notes.txt").write_text("not an image")
    with pytest.raises(ConfigError, match=r"no images in .*: its class folders \(cats, dogs\)"):
        ImageFolder(root=str(tmp_path))
    line = _main_error(cli, "run", "model=vision.cnn", "data=vision.image_folder", f"data.root={tmp_path}")
    assert "no images in" in line
    with pytest.raises(ConfigError, match="no class subfolders"):
        ImageFolder(root=str(tmp_path / "cats"))


@pytest.mark.slow
def test_unreadable_image_is_named(shapes_dir: Path, tmp_path: Path, cli: Any) -> None:
    import shutil

    from engine_vision.data import ImageFolder

    root = tmp_path / "data"
    shutil.copytree(shapes_dir, root)
    (root / "square" / "broken.png").write_bytes(b"this is not a png")
    line = _error_line(
        run_cli("run", "model=vision.cnn", "data=vision.image_folder", f"data.root={root}", env=ONE_THREAD)
    )
    assert f"cannot read image {root / 'square' / 'broken.png'}" in line
    with pytest.raises(ConfigError, match=r"broken\.png"):
        ImageFolder(root=str(root))


def test_mixed_channels_name_an_example_of_each(shapes_dir: Path, tmp_path: Path) -> None:
    import shutil

    from engine_vision.data import ImageFolder
    from PIL import Image

    root = tmp_path / "data"
    shutil.copytree(shapes_dir, root)
    Image.open(root / "circle" / "0003.png").convert("L").save(root / "circle" / "0003.png")
    with pytest.raises(ConfigError) as info:
        ImageFolder(root=str(root))
    assert "0003.png is greyscale (1 channel)" in info.value.message
    assert "circle/0000.png is colour (3 channels)" in info.value.message
    assert "data.channels=3" in str(info.value.hint)
    assert ImageFolder(root=str(root), channels=3).facts["in_channels"] == 3


def test_missing_folder_and_both_roots(tmp_path: Path) -> None:
    from engine_vision.data import ImageFolder

    with pytest.raises(ConfigError, match="image folder not found"):
        ImageFolder(root=str(tmp_path / "nowhere"))
    with pytest.raises(ConfigError, match=r"either data\.root .* or data\.train_root"):
        ImageFolder()


def test_model_that_does_not_fit_the_data(cli: Any) -> None:
    line = _main_error(cli, "run", "model=vision.cnn", "model.input_shape=[3,8,8]", "data=vision.digits")
    assert "the model does not fit the data: input of shape (1, 8, 8)" in line
    assert "vision.cnn was built for images of shape [3, H, W] (model.input_shape), got [1, 8, 8]" in line
    line = _main_error(cli, "run", "model=vision.vit", "model.patch_size=3", "data=vision.digits")
    assert "patch_size 3 does not divide the image size 8x8" in line


# --------------------------------------------------------------------------- commands


def test_shapes_command(tmp_path: Path) -> None:
    out = run_cli(
        "vision", "shapes", str(tmp_path / "s"), "--per-class", "3", "--size", "12", "--classes", "4", env=ONE_THREAD
    )
    assert out.returncode == 0, out.stderr
    assert sorted(p.name for p in (tmp_path / "s").iterdir()) == ["circle", "cross", "square", "triangle"]
    assert len(list((tmp_path / "s").rglob("*.png"))) == 12
    helped = run_cli("vision", "shapes", "--help", env=ONE_THREAD)
    assert helped.returncode == 0 and "--per-class" in helped.stdout


def test_shapes_command_errors(tmp_path: Path, cli: Any) -> None:
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "x").write_text("")
    assert "already exists" in _main_error(cli, "vision", "shapes", str(tmp_path / "taken"))
    assert "--per-class >= 1" in _main_error(cli, "vision", "shapes", str(tmp_path / "new"), "--per-class", "0")
    group = cli("vision")  # the group alone: its help, exit 0 (the kernel prints it)
    assert group.returncode == 0 and "shapes-detect" in group.stdout and "shapes" in group.stdout


def test_without_the_vision_plugin_everything_else_works(tmp_path: Path) -> None:
    """As if engine-vision were uninstalled: not loaded, and its package not importable."""
    code = (
        "import sys, importlib.abc\n"
        "class NoVision(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path=None, target=None):\n"
        "        if name.split('.')[0] == 'engine_vision':\n"
        "            raise ModuleNotFoundError(name)\n"
        "sys.meta_path.insert(0, NoVision())\n"
        "import runpy\n"
        "sys.argv = ['engine', *sys.argv[1:]]\n"
        "runpy.run_module('engine', run_name='__main__')\n"
    )
    env = {**os.environ, "ENGINE_DISABLE_PLUGINS": "vision", "COLUMNS": "200"}

    def engine_cmd(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, env=env)

    listing = engine_cmd("components", "list")
    assert listing.returncode == 0 and "core.mlp" in listing.stdout and "vision." not in listing.stdout
    assert engine_cmd("run", "core/mlp-synthetic", "--dry-run").returncode == 0
    others = [e for e in ("tabular/churn", "recsys/synthetic-mf") if e.split("/")[0] in listing.stdout]
    for recipe in others:
        assert engine_cmd("run", recipe, "--dry-run").returncode == 0, recipe
    gone = engine_cmd("run", "vision/digits", "--dry-run")
    assert gone.returncode == 2 and "unknown recipe 'vision/digits'" in gone.stderr


def test_digits_class_subset() -> None:
    """vision.digits data.classes: the label subset the fine-tuning benchmark pre-trains and fine-tunes on."""
    from engine_vision.data import Digits

    src = Digits(classes=[5, 7, 9])
    assert src.facts["num_classes"] == 3 and src.facts["class_names"] == ["5", "7", "9"]
    assert sorted(src.y.unique().tolist()) == [0, 1, 2] and 500 < len(src.y) < 560
    with pytest.raises(engine.ConfigError, match=r"distinct digits 0\.\.9"):
        Digits(classes=[3, 3])
