"""The default task (core.supervised) refuses, at --dry-run, data whose facts it cannot use (issue 35, defect 7)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

PAIRS = """
from engine import Component, hookimpl

@hookimpl
def engine_data_sources():
    return [
        Component("pairs", "pairs_impl:Pairs", "source/target token pairs", facts=("src_vocab_size", "tgt_vocab_size")),
        Component("quiet", "pairs_impl:Pairs", "a source declaring no facts"),
    ]
"""
MLP = ("model=mlp", "model.in_features=4", "model.out_features=3")
IMPL = """
from engine.data import DataSource

class Pairs(DataSource):
    def __init__(self, n: int = 8):
        self.n = n
"""


@pytest.fixture(autouse=True)
def _isolated(engine_isolated: Path) -> Path:
    return engine_isolated


def test_dry_run_refuses_a_classifier_without_num_classes_naming_the_task_to_set(plugin_site: Any, cli: Any) -> None:
    plugin_site("pairs", PAIRS, extra={"pairs_impl": IMPL})
    res = cli("run", *MLP, "data=pairs.pairs", "--dry-run")
    assert res.returncode == 2, res.stdout
    assert "needs num_classes" in res.stderr and "pairs.pairs" in res.stderr and "task=NAME" in res.stderr
    assert "src_vocab_size" in res.stderr and "Traceback" not in res.stderr
    assert "config is valid" not in res.stderr


def test_what_the_default_task_can_use_still_plans(plugin_site: Any, cli: Any) -> None:
    plugin_site("pairs", PAIRS, extra={"pairs_impl": IMPL})
    for args in (["data=pairs.pairs", "task.num_classes=3"], ["data=pairs.pairs", "task.problem=regression"],
                 ["data=pairs.quiet"], ["data=synthetic"]):  # fmt: skip
        res = cli("run", *MLP, *args, "--dry-run")
        assert res.returncode == 0, (args, res.stderr)
