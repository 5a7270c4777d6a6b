"""The conformance kit on the core's own plugin, and its failure messages."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from engine.testing import ConformanceError, check_plugin


def test_core_plugin_conforms(tmp_path: Path) -> None:
    csv = tmp_path / "t.csv"
    csv.write_text("a,b,label\n" + "".join(f"{i % 7},{i % 3},{i % 2}\n" for i in range(40)))
    passed = check_plugin(
        "core",
        run_dir=tmp_path / "runs",
        data_params={"core.csv": {"path": str(csv)}},
        skip=["core.distill"],  # needs a trained teacher run: tests/test_techniques.py trains one and distils it
    )
    assert "model 'core.mlp' forward/backward" in passed
    assert "recipe 'core/mlp-synthetic' completes fast_dev_run" in passed
    assert "scheduler 'core.cosine' steps" in passed
    assert not any(check.startswith("deploy ") for check in passed)  # the deploy plugin has the torch-only targets


def test_failures_name_the_component(plugin_site, tmp_path: Path) -> None:
    site = plugin_site(
        "faulty",
        """
from engine import Component, hookimpl

@hookimpl
def engine_models():
    return [Component("nograd", "faulty_impl:NoGrad"), Component("gone", "faulty_impl:Missing")]
""",
    )
    (site / "faulty_impl.py").write_text(
        "import torch\n"
        "class NoGrad(torch.nn.Module):\n"
        "    def __init__(self, in_features: int):\n"
        "        super().__init__()\n"
        "        self.w = torch.nn.Parameter(torch.ones(1))\n"
        "    def forward(self, x):\n"
        "        return x.detach() * 1.0\n"
    )
    with pytest.raises(ConformanceError) as err:
        check_plugin("faulty", facts={"in_features": 3, "input_shape": [3]}, run_dir=tmp_path)
    text = str(err.value)
    assert "model 'faulty.gone' imports" in text and "Missing" in text
    assert "model 'faulty.nograd' forward/backward" in text
    with pytest.raises(ConformanceError, match="not installed"):
        check_plugin("nope")


HOOKS = """
from engine import Component, Recipe, hookimpl

@hookimpl
def engine_{hook}():
    return [{declaration}]
"""
IMPL = """
from typing import Annotated

import torch
from annotated_types import Gt
from torch import nn

def slipped_range(margin: Annotated[float, Gt(0)] = 0.0):  # its own default is out of its range
    return nn.MSELoss()
from engine._run.data import ArrayDataset, DataSource

class WrongShape(DataSource):
    facts = {"input_shape": [5], "num_classes": 2}
    def datasets(self):
        return {"train": ArrayDataset(torch.randn(8, 4), torch.zeros(8, dtype=torch.long))}

class MissingFact(DataSource):
    facts = {"in_features": 4}
    def datasets(self):
        return {"train": ArrayDataset(torch.randn(8, 4), torch.zeros(8, dtype=torch.long))}

def vector_loss():
    return lambda out, target: (out - out.detach()).abs()

def no_params_optimizer(params, lr: float = 0.1):
    return torch.optim.SGD([], lr=lr)

class NoLoad:
    def export(self, model, example_inputs, out_dir):
        return out_dir

class Drifts:
    tolerance = 1e-6
    def export(self, model, example_inputs, out_dir):
        self.model = model  # kept in memory: this target only drifts, its file says nothing
        path = out_dir / "m.txt"
        path.write_text("drifting")
        return path
    def load(self, path):
        return lambda x: self.model(x) + 1.0

class TrainBoom(DataSource):
    facts = {"in_features": 4, "out_features": 2, "num_classes": 2, "problem": "classification"}
    def datasets(self):
        class Boom(torch.utils.data.Dataset):
            def __len__(self):
                return 8
            def __getitem__(self, i):
                if i >= 2:  # the pre-training check reads samples 0 and 1 only
                    raise RuntimeError("only in training")
                return torch.randn(4), torch.tensor(i % 2)
        return {"train": Boom()}

class NotAModule:
    def __init__(self, in_features: int):
        pass

import lightning as L

class BoomTask(L.LightningModule):
    def __init__(self, model):
        super().__init__()
        self.model = model
    def training_step(self, batch, batch_idx):
        raise RuntimeError("task boom")
    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)

def frozen_scheduler(optimizer, total_steps: int):
    return object()  # not a scheduler: .step() fails

NOT_CALLABLE = 42

class NeedsDepth(BoomTask):
    def __init__(self, model, depth: int):
        super().__init__(model)
"""


BOOM_DATA = (
    'Component("kit_data", "kit_impl:TrainBoom", facts=("in_features", "out_features", "num_classes", "problem"))'
)


@pytest.mark.parametrize(
    ("hook", "declaration", "message"),
    [
        ("models", 'Component("gone", "kit_impl:Missing")', "model 'kit.gone' imports: PluginError"),
        (
            "models",
            'Component("plain", "kit_impl:NotAModule")',
            "model 'kit.plain' forward/backward: AssertionError: built a NotAModule",
        ),
        (
            "data_sources",
            'Component("shape", "kit_impl:WrongShape", facts=("input_shape",))',
            "batch input shape [4] != input_shape fact [5]",
        ),
        (
            "data_sources",
            'Component("fact", "kit_impl:MissingFact", facts=("in_features", "num_classes"))',
            "declares facts ['num_classes']",
        ),
        ("losses", 'Component("vec", "kit_impl:vector_loss")', "loss 'kit.vec' returns a differentiable scalar"),
        ("optimizers", 'Component("empty", "kit_impl:no_params_optimizer")', "optimizer 'kit.empty' steps: ValueError"),
        ("schedulers", 'Component("frozen", "kit_impl:frozen_scheduler")', "scheduler 'kit.frozen' steps: Attribute"),
        ("losses", 'Component("num", "kit_impl:NOT_CALLABLE")', "loss 'kit.num' parameters: "),
        (
            "losses",
            'Component("slip", "kit_impl:slipped_range")',
            "loss 'kit.slip' parameters: ConformanceError: default margin=0.0 is not float > 0",
        ),
        ("deploy_targets", 'Component("noload", "kit_impl:NoLoad")', "deploy targets need load"),
        ("deploy_targets", 'Component("drift", "kit_impl:Drifts")', "differs from eager by 1 > tolerance"),
        (
            "tasks",
            'Component("boomtask", "kit_impl:BoomTask", slots={"model": "model"}, required_slots=("model",))',
            "task 'kit.boomtask' completes fast_dev_run: RuntimeError: task boom",
        ),
        (
            "tasks",
            'Component("deep", "kit_impl:NeedsDepth", slots={"model": "model"})',
            "task 'kit.deep' validates with model=mlp: ConfigError: task 'kit.deep' needs parameter 'depth'",
        ),
        (
            "recipes",
            'Recipe("bad", {"model": "nosuch", "data": "synthetic"})',
            "recipe 'kit/bad' validates: ConfigError: unknown model 'nosuch'",
        ),
        (
            "recipes",
            'Recipe("odd", {"model": "mlp", "data": "synthetic", "model.hidden": 1})',
            "unknown config section 'model.hidden'",
        ),
        (
            "recipes",
            'Recipe("boom", {"model": "mlp", "data": "kit_data"})',
            "recipe 'kit/boom' completes fast_dev_run: RuntimeError: only in training",
        ),
    ],
)
def test_kit_names_each_failing_check(plugin_site, tmp_path: Path, hook: str, declaration: str, message: str) -> None:
    code = HOOKS.format(hook=hook, declaration=declaration)
    if "kit_data" in declaration:
        code += HOOKS.format(
            hook="data_sources",
            declaration=BOOM_DATA,
        )
    site = plugin_site("kit", code)
    (site / "kit_impl.py").write_text(IMPL)
    with pytest.raises(ConformanceError) as err:
        check_plugin("kit", run_dir=tmp_path, facts={"in_features": 4, "input_shape": [4]})
    assert message in str(err.value)


def test_kit_reports_a_plugin_whose_entry_point_points_nowhere(plugin_site, tmp_path: Path) -> None:
    site = plugin_site("nowhere", "x = 1\n")
    entry_points = site / "engine_nowhere-1.0.dist-info" / "entry_points.txt"
    entry_points.write_text("[engine.plugins]\nnowhere = no_such_module\n")
    with pytest.raises(ConformanceError, match="plugin 'nowhere' is broken: import of 'no_such_module' failed"):
        check_plugin("nowhere", run_dir=tmp_path)


def test_fixture_is_registered(engine_check) -> None:
    assert callable(engine_check)


def test_protocol_problems_name_what_the_core_cannot_call() -> None:
    from engine._contract.protocols import problems

    class Task:
        def check_data(self) -> None: ...

        def evaluate_run(self, datamodule, episodes) -> dict: ...

        primary_metric = ("accuracy", "best")

    found = problems(Task(), "task")
    assert any("check_data(): takes 0 positional argument(s), the core passes 1" in p for p in found)
    assert any("evaluate_run(): parameters ['episodes'] need defaults" in p for p in found)
    assert any("primary_metric must be (name, 'max' | 'min')" in p for p in found)
    assert problems(Task, "task")[:2] == found[:2]  # a class is checked as the core will call its instances

    class Source:
        def load_input(self, path: str, *, size: int = 8): ...

    assert problems(Source(), "data") == []

    class Generator:  # Generates.generate(network, inputs, **options): its **options are not a positional argument
        def generate(self, network, inputs, **options) -> list: ...

        def network_inputs(self, inputs) -> tuple: ...

    assert problems(Generator, "task") == []
    assert problems(object(), "deploy") == ["deploy targets need export, load, tolerance (DeployTarget protocol)"]


MIXED = """
from engine import Component, hookimpl

@hookimpl
def engine_models():
    return [
        Component("pixels", "mixed_impl:Pixels", "images in"),
        Component("tokens", "mixed_impl:Tokens", "token ids in"),
    ]

@hookimpl
def engine_data_sources():
    return [
        Component("images", "mixed_impl:Images", "images", facts=("input_shape", "num_classes")),
        Component("texts", "mixed_impl:Texts", "texts", facts=("vocab_size", "num_classes")),
    ]
"""
MIXED_IMPL = """
from typing import Annotated

import torch
from annotated_types import Gt
from torch import nn

def slipped_range(margin: Annotated[float, Gt(0)] = 0.0):  # its own default is out of its range
    return nn.MSELoss()
from engine._run.data import ArrayDataset, DataSource

class Pixels(nn.Module):
    def __init__(self, input_shape: list[int], num_classes: int):
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(input_shape[0] * input_shape[1] * input_shape[2], num_classes))
    def forward(self, x):
        return self.net(x)

class Tokens(nn.Module):
    def __init__(self, vocab_size: int, num_classes: int):
        super().__init__()
        self.emb, self.head = nn.Embedding(vocab_size, 8), nn.Linear(8, num_classes)
    def forward(self, x):
        return self.head(self.emb(x).mean(1))

class Images(DataSource):
    def __init__(self):
        self.x, self.y = torch.randn(16, 1, 4, 4), torch.arange(16) % 2
    @property
    def facts(self):
        return {"input_shape": [1, 4, 4], "num_classes": 2}
    def datasets(self):
        return {"train": ArrayDataset(self.x, self.y), "val": ArrayDataset(self.x, self.y)}

class Texts(DataSource):
    def __init__(self):
        self.x, self.y = torch.randint(0, 10, (16, 5)), torch.arange(16) % 2
    @property
    def facts(self):
        return {"vocab_size": 10, "num_classes": 2}
    def datasets(self):
        return {"train": ArrayDataset(self.x, self.y), "val": ArrayDataset(self.x, self.y)}
"""


def test_a_plugin_mixing_data_kinds_has_each_model_checked_on_data_it_fits(plugin_site, tmp_path: Path) -> None:
    site = plugin_site("mixed", MIXED)
    (site / "mixed_impl.py").write_text(MIXED_IMPL)
    try:
        passed = check_plugin("mixed", run_dir=tmp_path)
    finally:
        sys.modules.pop("mixed_impl", None)
    assert "model 'mixed.pixels' forward/backward" in passed and "model 'mixed.tokens' forward/backward" in passed
