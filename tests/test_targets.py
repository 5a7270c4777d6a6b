"""Recipe targets: read, checked against a run's metrics, shown (the seeds x threads matrix is engine-experiments')."""

from __future__ import annotations

import subprocess
import sys

import pytest

import engine
from engine._contract.errors import ConfigError
from engine._contract.targets import Target, parse_target, parse_targets


def test_a_target_reads_a_number_or_a_multiple_of_another_metric() -> None:
    assert parse_target("test/accuracy >= 0.97") == Target("test/accuracy", ">=", 0.97)
    assert parse_target(" test/wer<=5e-2 ") == Target("test/wer", "<=", 0.05)
    assert parse_target("eval/return_mean >= -250") == Target("eval/return_mean", ">=", -250.0)
    relative = parse_target("test/recall@10 >= 0.9 * test/ease_recall@10")
    assert relative == Target("test/recall@10", ">=", 0.9, "test/ease_recall@10")
    assert str(relative) == "test/recall@10 >= 0.9 * test/ease_recall@10"
    assert parse_target("test/loss < test/bigram_loss").factor == 1.0


@pytest.mark.parametrize("text", ["test/accuracy", "test/accuracy => 0.9", "test/accuracy >= ", ">= 0.9", "a >= 2 * "])
def test_a_malformed_target_is_one_clear_error(text: str) -> None:
    with pytest.raises(ConfigError, match="expected 'METRIC OP BOUND'"):
        parse_target(text)
    with pytest.raises(ConfigError, match=r"^vision/x: cannot read target"):
        parse_targets([text], "vision/x")
    with pytest.raises(ConfigError, match="must be a list of strings"):
        parse_targets("test/accuracy >= 0.9", "vision/x")


def test_a_target_is_checked_against_the_runs_own_metrics() -> None:
    relative = parse_target("test/recall@10 >= 0.9 * test/ease_recall@10")
    assert relative.check({"test/recall@10": 0.19, "test/ease_recall@10": 0.2}) == (True, 0.19, 0.9 * 0.2)
    assert relative.check({"test/recall@10": 0.17, "test/ease_recall@10": 0.2})[0] is False
    assert relative.check({"test/recall@10": 0.19})[0] is False  # no baseline figure: not met
    lower = parse_target("test/wer <= 0.05")
    assert lower.check({"test/wer": 0.05})[0] and not lower.check({"test/wer": 0.0501})[0]
    assert not lower.check({"test/wer": float("nan")})[0] and not lower.check({})[0]


def _rows(*cells: tuple[int, int, float]) -> list[dict]:
    return [
        {"recipe": "x/y", "seed": s, "threads": t, "metrics": {"test/accuracy": v}, "wall_time_s": 1.0}
        for s, t, v in cells
    ]


def test_a_recipes_targets_read_and_show(plugin_site) -> None:
    plugin_site(
        "goals",
        """
from engine import Recipe, hookimpl

@hookimpl
def engine_recipes():
    return [Recipe("quick", {"model": "mlp", "data": "synthetic"}, "a quick run",
                   targets=("test/accuracy >= 0.9", "test/f1 >= 0.95 * test/accuracy"))]
""",
    )
    recipe = engine.get_registry().resolve("recipe", "goals/quick")
    assert [str(t) for t in parse_targets(recipe.targets, recipe.qualified_name)][
        1
    ] == "test/f1 >= 0.95 * test/accuracy"
    out = subprocess.run(
        [sys.executable, "-m", "engine", "components", "show", "goals/quick"], capture_output=True, text=True
    )
    assert out.returncode == 0 and "targets: test/accuracy >= 0.9; test/f1 >= 0.95 * test/accuracy" in out.stdout
