"""Weights from elsewhere: other libraries' state dicts through a model's adapters, and weights plugins ship."""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import pytest
import torch
from engine_techniques.transfer import apply_model_keys

import engine
from engine.testing import train_run

TINY = ["data=synthetic", "data.num_samples=200", "data.num_features=6", "data.num_classes=3", "trainer.max_epochs=1"]

PLUGIN = """
from engine import Component, Weights, hookimpl

@hookimpl
def engine_models():
    return [
        Component(
            "net",
            "wpkg.models:Net",
            "a two-layer net",
            adapters=("wpkg.models:from_other_library",),
            weights={{"demo": Weights("wpkg:demo.safetensors", "{sha}", "trained on nothing", {{"hidden": 5}})}},
        )
    ]
"""
MODELS = """
import torch
from torch import nn

class Net(nn.Module):
    def __init__(self, in_features: int, out_features: int, hidden: int = 8):
        super().__init__()
        self.body = nn.Linear(in_features, hidden)
        self.head = nn.Linear(hidden, out_features)

    def forward(self, x):
        return self.head(torch.relu(self.body(x)))

def from_other_library(state, model):
    '''The other library calls the layers fc1 and fc2, and stores fc1 transposed.'''
    if "fc1.weight" not in state:
        return None
    mapped = {"body.weight": state["fc1.weight"].t(), "body.bias": state["fc1.bias"]}
    mapped.update({"head." + k.split(".", 1)[1]: v for k, v in state.items() if k.startswith("fc2.")})
    return mapped, ["body.weight: transposed from fc1"]
"""


@pytest.fixture
def wpkg(plugin_site, tmp_path: Path):
    """A plugin whose package ships weights (sha256 declared) and maps another library's keys."""
    from safetensors.torch import save_file

    torch.manual_seed(0)
    shipped = {"body.weight": torch.randn(5, 6), "body.bias": torch.randn(5)}
    shipped |= {"head.weight": torch.randn(3, 5), "head.bias": torch.randn(3)}
    site = plugin_site("wpkg", "x = 1\n")
    pkg = site / "wpkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "models.py").write_text(MODELS)
    save_file(shipped, str(pkg / "demo.safetensors"))
    sha = hashlib.sha256((pkg / "demo.safetensors").read_bytes()).hexdigest()
    (site / "engine_wpkg_plugin.py").write_text(PLUGIN.format(sha=sha))
    yield {"site": site, "pkg": pkg, "shipped": shipped}
    for name in ("wpkg", "wpkg.models"):
        sys.modules.pop(name, None)


def _run(tmp_path: Path, *overrides: str, name: str = "r") -> dict:
    engine.get_registry(fresh=True)
    return train_run(*TINY, *overrides, root=tmp_path, name=name).summary


def test_another_librarys_state_dict_is_mapped_by_the_models_adapter(wpkg, tmp_path: Path) -> None:
    other = {"fc1.weight": torch.randn(6, 8), "fc1.bias": torch.randn(8), "fc2.weight": torch.randn(3, 8)}
    other["fc2.bias"] = torch.randn(3)
    torch.save(other, tmp_path / "other.bin")  # what torch.save of a state dict writes (.pth/.bin)
    reg = engine.get_registry(fresh=True)
    model = engine.create("model", "wpkg.net", in_features=6, out_features=3)
    apply_model_keys(model, {"init_from": str(tmp_path / "other.bin")}, "model", component=reg.resolve("model", "net"))
    x = torch.randn(4, 6)
    expected = torch.relu(x @ other["fc1.weight"] + other["fc1.bias"]) @ other["fc2.weight"].t() + other["fc2.bias"]
    assert torch.allclose(model(x), expected, atol=1e-5)  # the same function as the source model
    summary = _run(tmp_path, "model=wpkg.net", f"model.init_from={tmp_path / 'other.bin'}")
    report = summary["transfer"]["model"]["init_from"]
    assert report["adapter"] == "wpkg.models:from_other_library" and report["loaded"] == 4
    assert report["adapted"] == ["body.weight: transposed from fc1"] and report["missing"] == []


def test_a_file_that_fits_nothing_names_counts_and_keys(wpkg, tmp_path: Path, cli) -> None:
    torch.save({"encoder.layer.weight": torch.zeros(2, 2)}, tmp_path / "foreign.pth")
    out = cli("run", *TINY, "model=wpkg.net", f"model.init_from={tmp_path / 'foreign.pth'}", f"run.dir={tmp_path}")
    assert out.returncode == 2 and "Traceback" not in out.stderr
    line = out.stderr.splitlines()[0]
    assert "no tensor of" in line and "(1 in the file, 4 in the model" in line and "encoder.layer.weight" in line
    assert "none of its adapters (wpkg.models:from_other_library) recognised the file" in out.stderr


def test_shipped_weights_load_after_their_hash_is_checked(wpkg, tmp_path: Path, cli) -> None:
    shown = cli("components", "show", "wpkg.net")
    assert "weights: demo  trained on nothing  (model.weights=demo hidden=5)" in shown.stdout
    assert "init_from also reads: from_other_library" in shown.stdout
    summary = _run(tmp_path, "model=wpkg.net", "model.weights=demo", "trainer.max_steps=0")
    assert summary["transfer"]["model"]["init_from"]["loaded"] == 4
    dry = cli("run", *TINY, "model=wpkg.net", "model.weights=demo", "--dry-run")
    assert dry.returncode == 0 and "hidden: 5" in dry.stdout  # the weights' parameters, filled in
    typo = cli("run", *TINY, "model=wpkg.net", "model.weights=dmeo", "--dry-run")
    assert typo.returncode == 2 and "ships no weights 'dmeo' — did you mean 'demo'" in typo.stderr
    clash = cli("run", *TINY, "model=wpkg.net", "model.weights=demo", "model.hidden=7", "--dry-run")
    assert clash.returncode == 2 and "were trained with model.hidden=5; the config sets 7" in clash.stderr
    both = cli("run", *TINY, "model=wpkg.net", "model.weights=demo", f"model.init_from={tmp_path}", "--dry-run")
    assert both.returncode == 2 and "both name weights to load" in both.stderr


def test_shipped_weights_whose_hash_differs_are_refused(wpkg, tmp_path: Path, cli) -> None:
    path = wpkg["pkg"] / "demo.safetensors"
    path.write_bytes(path.read_bytes()[:-1] + b"\x00")  # one byte changed
    out = cli("run", *TINY, "model=wpkg.net", "model.weights=demo", f"run.dir={tmp_path}", "run.name=r")
    assert out.returncode == 2 and "refusing model.weights=demo" in out.stderr and "changed or corrupted" in out.stderr
    assert not (tmp_path / "r").exists()
    assert "Traceback" not in out.stderr
