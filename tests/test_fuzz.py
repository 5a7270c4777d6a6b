"""Hostile overrides at ``engine run --dry-run``: whatever the value, the answer is a plan (exit 0) or one short
line in the engine's words (exit 2) — never a traceback, never OmegaConf's internals, never a value echoed whole.

Bounded and derandomized (the same examples every run, no example database), in-process, nothing trained.
"""

from __future__ import annotations

import pytest

hypothesis = pytest.importorskip("hypothesis")  # the root `test` extra installs it
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

BASE = ["model=mlp", "model.hidden=[8]", "data=synthetic", "data.num_samples=200", "trainer.max_epochs=1"]
KEYS = [
    "model",
    "data",
    "optimizer",
    "scheduler",
    "loss",
    "task",
    "seed",
    "model.hidden",
    "model.hidden[0]",
    "model.dropout",
    "model.activation",
    "optimizer.lr",
    "optimizer.betas",
    "optimizer.eps",
    "optimizer.param_groups",
    "data.num_samples",
    "data.class_sep",
    "data.batch_size",
    "data.val_fraction",
    "trainer.max_epochs",
    "trainer.accumulate_grad_batches",
    "trainer.devices",
    "trainer.precision",
    "trainer.limit_train_batches",
    "trainer.gradient_clip_val",
    "run.name",
    "run.dir",
    "checkpoint.monitor",
    "checkpoint.every_n_epochs",
    "early_stopping.patience",
]
INTERNALS = ("full_key:", "object_type=", "token recognition", "Traceback", "<unicode string>")


def _near(key: str, cut: int) -> str:
    """A key one slip away from a real one: a letter dropped, doubled, or a section misspelt."""
    i = cut % len(key)
    return [key[:i] + key[i + 1 :], key[:i] + key[i] + key[i:], key + "s", "x" + key][cut % 4] or "x"


NUMBERS = st.one_of(
    st.integers(min_value=-(10**30), max_value=10**30).map(str),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.sampled_from(["inf", "-inf", "nan", ".inf", "-.inf", ".nan", "1e999", "-0", "0x10", "1_000", "9" * 5000]),
)
INTERPOLATIONS = st.one_of(
    st.sampled_from(KEYS).map(lambda k: "${" + k + "}"),
    st.sampled_from(["${oc.env:HOME}", "${ oc.env:PATH,x}", "${oc.decode:'1'}", "${oc.create:'{a: 1}'}"]),
    st.sampled_from(["${", "${}", "${a b}", "${${seed}}", "$${seed}", "\\${x}", "${seed", "${oc.select:}"]),
    st.text(max_size=40).map(lambda t: "${" + t + "}"),
)
BRACKETS = st.integers(min_value=1, max_value=300).flatmap(
    lambda n: st.sampled_from(["[" * n + "]" * n, "[" * n, "{" * n + "}" * n, "{a:" * n, "[1," * n + "]"])
)
VALUES = st.one_of(
    NUMBERS,
    INTERPOLATIONS,
    BRACKETS,
    st.text(max_size=80),  # unicode, control characters, quotes
    st.integers(min_value=100, max_value=20000).map(lambda n: "x" * n),
    st.lists(NUMBERS, max_size=5).map(lambda xs: "[" + ",".join(xs) + "]"),
    st.sampled_from(["", "null", "true", "mlp", "core.mlp", "adamw", "[]", "{}", "'quoted'", '"half']),
)
OVERRIDES = st.one_of(
    st.tuples(st.sampled_from(KEYS), VALUES).map("=".join),
    st.tuples(st.sampled_from(KEYS), st.integers(0, 99), VALUES).map(lambda t: f"{_near(t[0], t[1])}={t[2]}"),
    st.sampled_from(KEYS),  # no '='
    st.text(min_size=1, max_size=30),  # anything at all
)


@settings(
    max_examples=200,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(items=st.lists(OVERRIDES, min_size=1, max_size=3))
def test_hostile_overrides_get_a_plan_or_one_short_line(cli, items: list[str]) -> None:
    out = cli("run", *BASE, "--dry-run", *items)
    assert out.returncode in (0, 2), (items, out.returncode, out.stderr[-1500:])
    if out.returncode == 2:
        lines = [line for line in out.stderr.splitlines() if line.startswith(("error:", "  hint:", "usage:"))]
        assert lines, (items, out.stderr[-1500:])
        assert all(len(line) <= 300 for line in lines), (items, out.stderr[:1500])
    noise = [n for n in INTERNALS if n in out.stderr and not any(n in item for item in items)]  # not echoed: internals
    assert not noise, (items, out.stderr[-1500:])
