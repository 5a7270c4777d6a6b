"""The files of a new plugin package, as ``str.format`` templates (``{name}``, ``{package}``, ``{dist}`` …).

The generated plugin uses only the engine's public API (``engine``, ``engine.data``, and the
``engine_check`` fixture of ``engine.testing``) and passes its own tests as written.
"""

from __future__ import annotations

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

A plugin for engine contributing:

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
ENGINE_API = "{engine_api}"


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
"""The plugin's tests. ``engine_check`` is a fixture of engine.testing (a pytest plugin, there whenever
engine is installed): the conformance kit, as scikit-learn's ``check_estimator``."""


def test_conformance(engine_check):
    """Every component builds, runs forward/backward, and the recipe trains a batch."""
    engine_check("{name}")


def test_blobs_facts():
    from {package}.data import Blobs

    source = Blobs(num_samples=90, num_features=5, num_classes=3)
    assert source.facts["in_features"] == 5
    assert set(source.datasets()) == {{"train", "val", "test"}}
''',
}
