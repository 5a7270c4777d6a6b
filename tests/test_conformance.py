"""The conformance kit on the core's own plugin, and its failure messages."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine.testing import ConformanceError, check_plugin


def test_core_plugin_conforms(tmp_path: Path) -> None:
    csv = tmp_path / "t.csv"
    csv.write_text("a,b,label\n" + "".join(f"{i % 7},{i % 3},{i % 2}\n" for i in range(40)))
    passed = check_plugin("core", run_dir=tmp_path / "runs", data_params={"core.csv": {"path": str(csv)}})
    assert "model 'core.mlp' forward/backward" in passed
    assert "recipe 'core/mlp-synthetic' completes fast_dev_run" in passed
    assert "scheduler 'core.cosine' steps" in passed


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


def test_fixture_is_registered(engine_check) -> None:
    assert callable(engine_check)
