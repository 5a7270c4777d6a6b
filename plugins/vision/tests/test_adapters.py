"""Weights from timm and torchvision for vision.resnet (``model.init_from=FILE``), and the weights the plugin ships.

The reference outputs are computed by timm's own ResNet (``timm.create_model("resnet50")``, random
weights, nothing downloaded). timm imports torchvision at module level for its data pipeline and
``FrozenBatchNorm2d``, and torchvision cannot be installed beside every torch build (PyPI's wheel
for another build fails to import: "operator torchvision::nms does not exist"). When no working
torchvision is there, `_import_timm` serves the few torchvision modules timm imports as
stubs while timm is imported, then removes them: timm's model code runs unchanged, and a stub
that is used raises. timm itself is installed with ``pip install --no-deps timm`` (its declared
torchvision dependency would pull a torch build of its own).
"""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import importlib.util
import json
import re
import sys
import types
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn

import engine
from engine import ConfigError

#: The torchvision modules timm (1.0) imports at module level: timm.layers (FrozenBatchNorm2d) and timm.data.
_TORCHVISION_STUBS = (
    "torchvision",
    "torchvision.datasets",
    "torchvision.ops",
    "torchvision.ops.misc",
    "torchvision.transforms",
    "torchvision.transforms.functional",
)


class _Stub(type):
    """A torchvision name timm imports but the model code never uses: attributes are stubs, calling one raises."""

    def __getattr__(cls, name: str) -> Any:
        if name.startswith("__"):
            raise AttributeError(name)
        return _stub(f"{cls.__qualname__}.{name}")

    def __call__(cls, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError(f"{cls.__qualname__} is a test stub: torchvision is not installed")


def _stub(name: str) -> type:
    return _Stub(name, (), {"__qualname__": name})


class _TorchvisionStubs(importlib.abc.MetaPathFinder, importlib.abc.Loader):
    def find_spec(self, name: str, path: Any, target: Any = None) -> importlib.machinery.ModuleSpec | None:
        return importlib.machinery.ModuleSpec(name, self, is_package=True) if name in _TORCHVISION_STUBS else None

    def create_module(self, spec: importlib.machinery.ModuleSpec) -> None:
        return None

    def exec_module(self, module: types.ModuleType) -> None:
        def attr(name: str) -> type:
            if name.startswith("__"):
                raise AttributeError(name)
            return _stub(f"{module.__name__}.{name}")

        module.__path__ = []
        module.__getattr__ = attr  # type: ignore[method-assign]


def _drop_torchvision() -> None:
    for name in [n for n in sys.modules if n == "torchvision" or n.startswith("torchvision.")]:
        del sys.modules[name]


def _import_timm() -> Any:
    if importlib.util.find_spec("timm") is None:
        pytest.skip("timm is not installed (pip install --no-deps 'timm>=1.0')")
    try:
        import torchvision  # noqa: F401  (a working torchvision: timm imports as it is)
    except Exception:  # absent, or built for another torch
        _drop_torchvision()
        stubs = _TorchvisionStubs()
        sys.meta_path.insert(0, stubs)
        try:
            import timm
        finally:
            sys.meta_path.remove(stubs)
            _drop_torchvision()  # nothing after this sees a torchvision
    import timm

    return timm


@pytest.fixture(scope="module")
def timm() -> Any:
    return _import_timm()


def _source(timm: Any, depth: int, **kwargs: Any) -> nn.Module:
    """timm's ResNet-``depth`` with random weights, and random norm statistics in every block."""
    torch.manual_seed(depth)
    model = timm.create_model(f"resnet{depth}", pretrained=False, **kwargs)
    with torch.no_grad():  # timm zero-initialises each block's last norm: give every branch a part in the output
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5)
                m.bias.normal_(0, 0.1)
                m.running_mean.normal_(0, 0.1)
                m.running_var.uniform_(0.5, 1.5)
    return model.eval()


def _loaded(path: Path, channels: int = 3, classes: int = 10, **params: Any) -> nn.Module:
    """vision.resnet built as a user's config builds it, with ``model.init_from=path`` applied."""
    from engine_techniques.transfer import apply_model_keys  # model.init_from: the techniques plugin

    params = {"input_shape": [channels, 32, 32], "num_classes": classes, "stem": "imagenet", **params}
    model = engine.create("model", "vision.resnet", **params)
    component = engine.get_registry().resolve("model", "vision.resnet")
    return apply_model_keys(model, {"init_from": str(path)}, "model", component=component).eval()


@pytest.mark.parametrize("depth", [18, 34, 50])
def test_timm_resnet_weights_give_timms_outputs(timm: Any, depth: int, tmp_path: Path) -> None:
    from safetensors.torch import save_file

    source = _source(timm, depth, num_classes=10)
    save_file(source.state_dict(), str(tmp_path / "timm.safetensors"))
    model = _loaded(tmp_path / "timm.safetensors", depth=depth)
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        diff = (model(x) - source(x)).abs().max().item()
    assert diff <= 1e-4
    report = model._engine_init_report
    assert report["adapter"] == "engine_vision.adapters:timm_resnet"
    assert report["missing"] == [] and report["unexpected"] == [] and report["adapted"] == []


def _torchvision_keys(depth: int) -> list[str]:
    """The keys of ``torchvision.models.resnet{depth}().state_dict()``, spelled out from torchvision's module names."""
    bn = ["weight", "bias", "running_mean", "running_var", "num_batches_tracked"]
    keys = ["conv1.weight", *(f"bn1.{b}" for b in bn)]
    counts = {18: (2, 2, 2, 2), 50: (3, 4, 6, 3)}[depth]
    convs = 3 if depth == 50 else 2
    for stage, n in enumerate(counts, 1):
        for block in range(n):
            prefix = f"layer{stage}.{block}"
            for i in range(1, convs + 1):
                keys += [f"{prefix}.conv{i}.weight", *(f"{prefix}.bn{i}.{b}" for b in bn)]
            if block == 0 and (stage > 1 or depth == 50):  # the projection shortcut
                keys += [f"{prefix}.downsample.0.weight", *(f"{prefix}.downsample.1.{b}" for b in bn)]
    return [*keys, "fc.weight", "fc.bias"]


@pytest.mark.parametrize("depth", [18, 50])
def test_torchvision_layout_saved_with_torch_save(timm: Any, depth: int, tmp_path: Path) -> None:
    # torchvision's ResNet names its tensors as timm's does, so timm's state dict renamed to
    # torchvision's names is timm's state dict: what `torch.save(torchvision_model.state_dict())` writes.
    source = _source(timm, depth)
    state = source.state_dict()
    assert list(state) == _torchvision_keys(depth)
    torch.save(state, tmp_path / f"resnet{depth}.pth")
    model = _loaded(tmp_path / f"resnet{depth}.pth", classes=1000, depth=depth)
    x = torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        assert (model(x) - source(x)).abs().max().item() <= 1e-4


def test_a_stem_for_other_channels_is_adapted_as_timm_does(timm: Any, tmp_path: Path) -> None:
    from engine_vision.adapters import adapt_input_conv
    from safetensors.torch import save_file

    rgb = _source(timm, 18, num_classes=10)
    save_file(rgb.state_dict(), str(tmp_path / "rgb.safetensors"))
    grey = _loaded(tmp_path / "rgb.safetensors", channels=1)
    x = torch.randn(2, 1, 32, 32)
    with torch.no_grad():  # summed: a grey image gives what the RGB model gives for it repeated as RGB
        assert (grey(x) - rgb(x.repeat(1, 3, 1, 1))).abs().max().item() <= 1e-4
    assert grey._engine_init_report["adapted"] == [
        "stem.1.weight: 3 input channels summed to 1 (as timm's adapt_input_conv)"
    ]
    one = _source(timm, 18, num_classes=10, in_chans=1)  # and back: repeated and scaled
    save_file(one.state_dict(), str(tmp_path / "grey.safetensors"))
    colour = _loaded(tmp_path / "grey.safetensors", channels=3)
    with torch.no_grad():
        assert (colour(x.repeat(1, 3, 1, 1)) - one(x)).abs().max().item() <= 1e-4
    weight = rgb.conv1.weight.detach()
    for channels in (1, 2, 4, 5):
        assert torch.equal(adapt_input_conv(weight, channels), timm.models.adapt_input_conv(channels, weight))


def test_a_file_of_another_resnet_names_the_settings_that_fit(timm: Any, tmp_path: Path) -> None:
    from safetensors.torch import save_file

    save_file(_source(timm, 50).state_dict(), str(tmp_path / "r50.safetensors"))
    with pytest.raises(ConfigError, match=r"ResNet-50, the model is a ResNet-18(.|\n)*hint: set model\.depth=50$"):
        _loaded(tmp_path / "r50.safetensors", depth=18)
    with pytest.raises(ConfigError) as refused:  # every setting at once: depth, stem, width (vision/digits-resnet's)
        _loaded(tmp_path / "r50.safetensors", depth=18, stem="small", width=32)
    assert "7x7 convolution (and max-pool), the model's a 3x3 one" in str(refused.value)
    assert "64 channels wide, the model 32" in str(refused.value)
    assert str(refused.value).endswith("hint: set model.depth=50 model.stem=imagenet model.width=64")
    with pytest.raises(ConfigError, match=r"set model\.norm=batch"):
        _loaded(tmp_path / "r50.safetensors", depth=50, norm="group")


def test_resnet_variants_it_cannot_represent_are_refused_by_name(tmp_path: Path) -> None:
    from engine_vision.adapters import timm_resnet

    model = engine.create("model", "vision.resnet", input_shape=[3, 32, 32], num_classes=10, stem="imagenet")
    w = torch.zeros(1)
    with pytest.raises(ConfigError, match="deep 3-convolution stem"):  # timm's resnet50d
        timm_resnet({"conv1.0.weight": w, "layer1.0.conv1.weight": w}, model)
    with pytest.raises(ConfigError, match=r"parts vision.resnet has not \(se\)"):  # seresnet
        timm_resnet({"conv1.weight": w, "layer1.0.conv1.weight": w, "layer1.0.se.fc1.weight": w}, model)
    assert timm_resnet({"features.0.weight": w}, model) is None  # another layout: not ours to map


@pytest.fixture(scope="module")
def timm_resnet18_file(timm: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    from safetensors.torch import save_file

    path = tmp_path_factory.mktemp("timm") / "resnet18.safetensors"
    save_file(_source(timm, 18).state_dict(), str(path))  # 3 channels, 1000 classes
    return path


def test_timm_weights_on_digits_report_what_was_adapted(timm_resnet18_file: Path, tmp_path: Path, cli: Any) -> None:
    out = cli(
        "run",
        "model=vision.resnet",
        "model.stem=imagenet",
        "data=vision.digits",
        f"model.init_from={timm_resnet18_file}",
        "trainer.max_epochs=1",
        "trainer.limit_train_batches=2",
        "trainer.limit_val_batches=1",
        "trainer.limit_test_batches=1",
        f"run.dir={tmp_path}",
        "run.name=r",
    )
    assert out.returncode == 0, out.stderr
    report = json.loads((tmp_path / "r" / "summary.json").read_text())["transfer"]["model"]["init_from"]
    assert report["adapter"] == "engine_vision.adapters:timm_resnet"
    assert report["adapted"] == [
        "stem.1.weight: 3 input channels summed to 1 (as timm's adapt_input_conv)",
        "head.3: the file's classifier has 1000 classes, the model 10, left freshly initialised",
    ]
    assert report["missing"] == ["head.3.bias", "head.3.weight"] and report["unexpected"] == []
    own = engine.create("model", "vision.resnet", input_shape=[1, 8, 8], num_classes=10, stem="imagenet")
    assert report["loaded"] == len(own.state_dict()) - 2  # all but the classifier


def test_a_file_that_fits_nothing_is_refused_with_counts(tmp_path: Path, cli: Any) -> None:
    torch.save({"encoder.layer.weight": torch.zeros(2, 2)}, tmp_path / "foreign.pth")
    out = cli("run", "model=vision.resnet", "data=vision.digits", f"model.init_from={tmp_path / 'foreign.pth'}")
    assert out.returncode == 2 and "Traceback" not in out.stderr
    assert re.search(r"no tensor of .*foreign\.pth fits the model \(1 in the file, \d+ in the model", out.stderr)
    assert "none of its adapters (engine_vision.adapters:timm_resnet) recognised the file" in out.stderr


# --------------------------------------------------------------------------- shipped weights


def test_shipped_digits_weights_reach_their_stated_test_accuracy(tmp_path: Path, cli: Any) -> None:
    shipped = engine.get_registry().resolve("model", "vision.cnn").weights["digits"]
    stated = float(re.search(r"test accuracy (\d\.\d+)", shipped.summary)[1])
    shown = cli("components", "show", "vision.cnn")
    assert "weights: digits  trained by recipe vision/digits" in shown.stdout
    out = cli(
        "run", "vision/digits", "model.weights=digits", "trainer.max_epochs=0", f"run.dir={tmp_path}", "run.name=w"
    )
    assert out.returncode == 0, out.stderr
    summary = json.loads((tmp_path / "w" / "summary.json").read_text())
    assert summary["transfer"]["model"]["init_from"]["loaded"] == 38 and summary["global_step"] == 0
    assert summary["metrics"]["test/accuracy"] >= stated


def test_shipped_weights_on_another_split_are_warned_about(cli: Any) -> None:
    """Issue 37 item 14: seed=1 splits the digits anew; most of its test images trained the seed-0 weights."""
    from engine_vision.spec import digits_weights_split

    assert digits_weights_split()["seed"] == 0
    other = cli("run", "vision/digits", "model.weights=digits", "seed=1", "--dry-run")
    assert other.returncode == 0, other.stderr
    warning = [ln for ln in other.stderr.splitlines() if ln.startswith("warning: model.weights=digits")]
    assert len(warning) == 1 and "data.seed=0" in warning[0] and "data.seed=1" in warning[0]
    same = cli("run", "vision/digits", "model.weights=digits", "seed=0", "--dry-run")
    assert same.returncode == 0 and "warning: model.weights" not in same.stderr
    trained_anew = cli("run", "vision/digits", "seed=1", "--dry-run")  # no shipped weights: nothing to warn about
    assert "warning: model.weights" not in trained_anew.stderr
