"""Every refusal is one short line in the engine's words: no OmegaConf internals, no value echoed whole, the
same suggestions in every process, and the item that is wrong named."""

from __future__ import annotations

from pathlib import Path

import pytest

from engine import did_you_mean

TINY = ["model=mlp", "model.hidden=[8]", "data=synthetic", "data.num_samples=200", "trainer.max_epochs=1"]
INTERNALS = ("full_key", "object_type", "token recognition", "no viable alternative", "<unicode string>")


def _error(out) -> str:  # type: ignore[no-untyped-def]
    errors = [line for line in out.stderr.splitlines() if line.startswith("error:")]
    assert out.returncode == 2 and len(errors) == 1 and "Traceback" not in out.stderr, out.stderr[-1500:]
    return errors[0]


@pytest.mark.parametrize(
    "override",
    [
        "optimizer.lr=${",
        "optimizer.lr=${a b}",
        "optimizer.lr=${nosuch.key}",
        "optimizer.lr=${optimizer.lr}",
        "optimizer.lr=[1,2",
        'optimizer.lr="abc',
        "optimizer.lr=${oc.select:}",
    ],
)
def test_omegaconf_errors_are_translated(cli, override: str) -> None:
    line = _error(cli("run", *TINY, override, "--dry-run"))
    assert not any(noise in line for noise in INTERNALS), line
    assert "optimizer.lr" in line, line


@pytest.mark.parametrize(
    "override",
    [
        "optimizer.lr=" + "9" * 5000,
        "optimizer.lr=" + "x" * 5000,
        "optimizer.lr=[" + ",".join(["1"] * 3000) + "]",
        "run.name=" + "é" * 5000,
        "optimizer.lr=${" + "x" * 5000,
        "optimizer." + "x" * 5000 + "=1",
        "model=" + "m" * 5000,
        "task=[" + ",".join(["1"] * 3000) + "]",
        "optimizer.lr=" + " " * 5000 + "inf",
        "x" * 5000 + "=1",
        "model.hidden[" + "0" * 5000 + "]=1",
    ],
    ids=lambda o: o[:24],
)
def test_a_huge_value_is_not_echoed_whole(cli, override: str) -> None:
    out = cli("run", *TINY, override, "--dry-run")
    assert out.returncode == 2 and len(out.stderr) < 600, out.stderr[:1500]


def test_an_item_without_equals_after_an_option_is_named(cli) -> None:
    out = cli("run", *TINY, "--dry-run", "optimizer.lr=0.1", "foo")
    line = _error(out)
    assert "'foo'" in line and "key=value" in line and "unrecognized" not in out.stderr, out.stderr


def test_an_unknown_option_after_overrides_is_still_argparse_s(cli) -> None:
    out = cli("run", *TINY, "--dry-run", "optimizer.lr=0.1", "--bogus")
    assert out.returncode == 2 and "--bogus" in out.stderr and "optimizer.lr" not in out.stderr, out.stderr


def test_suggestions_do_not_depend_on_the_order_of_the_choices() -> None:
    choices = ["zeta.l1", "alpha.l1", "mid.l1", "beta.l1"]  # none close: the ones containing the word, in order
    assert did_you_mean("l", choices) == did_you_mean("l", reversed(choices))
    assert did_you_mean("l", set(choices)) == " — did you mean 'alpha.l1' or 'beta.l1' or 'mid.l1'?"


def test_resume_of_a_missing_directory_says_not_found(tmp_path: Path, cli) -> None:
    line = _error(cli("run", "--resume", str(tmp_path / "missing"), "--dry-run"))
    assert "not found" in line and "no config.yaml" not in line, line
    (tmp_path / "empty").mkdir()
    line = _error(cli("run", "--resume", str(tmp_path / "empty"), "--dry-run"))
    assert "no config.yaml" in line, line
