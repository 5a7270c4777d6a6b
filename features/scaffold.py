"""``engine new plugin NAME``: scaffold a pip-installable plugin that passes its own tests."""

from __future__ import annotations

import argparse
import keyword
import re
from pathlib import Path

from engine.errors import EngineError

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")

FILES: dict[str, str] = {
    "pyproject.toml": """\
[build-system]
requires = ["setuptools>=68"]
build-backend = "setuptools.build_meta"

[project]
name = "{dist}"
version = "0.1.0"
description = "{name}: a plugin for engine"
readme = "README.md"
requires-python = ">=3.10"
dependencies = ["engine>={engine_version}", "torch>=2.4"]

[project.optional-dependencies]
test = ["pytest>=8"]

# This line is what makes it a plugin: the entry point's name ("{name}") qualifies
# every component it declares ({name}.tiny_net, {name}/demo).
[project.entry-points."engine.plugins"]
{name} = "{package}.plugin"

[tool.setuptools.packages.find]
include = ["{package}*"]

[tool.setuptools.package-data]
{package} = ["recipes/*.yaml"]
""",
    "README.md": """\
# {dist}

A plugin for [engine](https://github.com/) contributing:

| kind   | name            | what |
|--------|-----------------|------|
| model  | `{name}.tiny_net` | a small MLP classifier |
| data   | `{name}.blobs`    | seeded Gaussian blobs |
| recipe | `{name}/demo`     | tiny_net on blobs |

```console
pip install -e .
engine plugins list                 # shows {name}
engine components show {name}.tiny_net
engine run {name}/demo
pytest                              # the conformance kit checks every component
```
""",
    "{package}/__init__.py": '''\
"""{dist}: a plugin for engine."""

__version__ = "0.1.0"
''',
    "{package}/plugin.py": '''\
"""The plugin module: hook implementations only.

Keep this module free of heavy imports (torch, numpy): the engine imports it to
list components and validate configs, which must stay fast. Targets are named
lazily as "module:attr" and imported only when a run is built.
"""

from engine import Component, Recipe, hookimpl

#: The engine plugin-API versions this plugin supports (a PEP 440 specifier).
ENGINE_API = ">=1,<2"


@hookimpl
def engine_models():
    return [Component("tiny_net", "{package}.models:TinyNet", "A small MLP classifier")]


@hookimpl
def engine_data_sources():
    return [
        Component(
            "blobs",
            "{package}.data:Blobs",
            "Seeded Gaussian blobs, one per class",
            facts=("problem", "num_classes", "in_features", "input_shape", "out_features"),
        )
    ]


@hookimpl
def engine_recipes():
    return [Recipe("demo", "{package}:recipes/demo.yaml", "tiny_net on blobs")]
''',
    "{package}/models.py": '''\
"""Models. Parameters are read from the signature and the "Args:" docstring."""

from torch import nn


class TinyNet(nn.Module):
    """A small MLP classifier.

    Args:
        in_features: size of each input vector (from the data).
        num_classes: number of classes (from the data).
        hidden: width of the hidden layer.
        dropout: dropout probability.
    """

    def __init__(self, in_features: int, num_classes: int, hidden: int = 32, dropout: float = 0.0) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Linear(in_features, hidden), nn.ReLU(), nn.Dropout(dropout), nn.Linear(hidden, num_classes)
        )

    def forward(self, x):
        return self.net(x)
''',
    "{package}/data.py": '''\
"""Data sources: facts about the data, and datasets per split."""

import torch

from engine.data import ArrayDataset, DataSource, split_indices


class Blobs(DataSource):
    """Seeded Gaussian blobs, one per class.

    Args:
        num_samples: samples in all splits together.
        num_features: dimension of each sample.
        num_classes: number of classes (blobs).
        spread: standard deviation of each blob; larger is harder.
        seed: seed of the data and the split.
    """

    def __init__(
        self, num_samples: int = 600, num_features: int = 4, num_classes: int = 3, spread: float = 1.0, seed: int = 0
    ) -> None:
        g = torch.Generator().manual_seed(seed)
        centres = torch.randn(num_classes, num_features, generator=g) * 3
        self.y = torch.arange(num_samples) % num_classes
        self.x = centres[self.y] + spread * torch.randn(num_samples, num_features, generator=g)
        self.num_classes = num_classes
        self.index = split_indices(num_samples, 0.1, 0.2, seed, stratify=self.y)

    @property
    def facts(self):
        n = self.x.shape[1]
        return {{
            "problem": "classification",
            "num_classes": self.num_classes,
            "out_features": self.num_classes,
            "in_features": n,
            "input_shape": [n],
        }}

    def datasets(self):
        return {{split: ArrayDataset(self.x[i], self.y[i]) for split, i in self.index.items()}}
''',
    "{package}/recipes/demo.yaml": """\
# engine run {name}/demo   (override anything: engine run {name}/demo trainer.max_epochs=3)
model:
  name: {name}.tiny_net
  hidden: 32
data:
  name: {name}.blobs
  num_samples: 600
optimizer:
  name: adamw
  lr: 0.01
trainer:
  max_epochs: 5
""",
    "tests/test_{name}.py": '''\
from engine.testing import check_plugin


def test_conformance(tmp_path):
    """Every component builds, runs forward/backward, and the recipe trains a batch."""
    check_plugin("{name}", run_dir=tmp_path)


def test_blobs_facts():
    from {package}.data import Blobs

    source = Blobs(num_samples=90, num_features=5, num_classes=3)
    assert source.facts["in_features"] == 5
    assert set(source.datasets()) == {{"train", "val", "test"}}
''',
}


def plugin_name(name: str) -> str:
    """The plugin name for what the user typed: ``acme-widgets`` -> ``acme_widgets`` (a Python identifier)."""
    plugin = name.replace("-", "_")
    if not _NAME.match(plugin) or keyword.iskeyword(plugin):
        raise EngineError(
            f"'{name}' is not a valid plugin name",
            hint="use lower-case letters, digits, _ or -, starting with a letter (acme-widgets: package "
            "engine_acme_widgets, plugin acme_widgets)",
        )
    return plugin


def validate_name(name: str) -> None:
    name = plugin_name(name)
    from engine.plugins import PluginManager

    existing = PluginManager().plugins
    if name in existing:
        info = existing[name]
        raise EngineError(
            f"a plugin named '{name}' is already installed ({info.distribution or 'built in'})",
            hint="choose another name",
        )


def scaffold(name: str, directory: Path) -> list[Path]:
    """Write the plugin package for ``name`` into ``directory``; returns the files written."""
    from engine.version import __version__

    validate_name(name)
    name = plugin_name(name)
    if directory.exists() and any(directory.iterdir()):
        raise EngineError(f"{directory} exists and is not empty", hint="choose another --dir")
    values = {
        "name": name,
        "dist": f"engine-{name.replace('_', '-')}",
        "package": f"engine_{name}",
        "engine_version": __version__,
    }
    written = []
    for template_path, template in FILES.items():
        path = directory / template_path.format(**values)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(template.format(**values), encoding="utf-8")
        written.append(path)
    return written


def cmd_new_plugin(args: argparse.Namespace) -> int:
    name = plugin_name(args.name)
    directory = Path(args.dir or f"engine-{name.replace('_', '-')}")
    files = scaffold(name, directory)
    for f in files:
        print(f"  created {f}")
    print(
        f"\nnext:\n  engine plugins install -e {directory}\n  pytest {directory}\n  engine plugins list\n"
        f"  engine run {name}/demo"
    )
    return 0
