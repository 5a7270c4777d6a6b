"""Shared pieces of the sweep tests: a tiny base run (the core's MLP on 300 synthetic samples) and the CLI."""

from __future__ import annotations

from typing import Any

import pytest

#: Every trial of these tests: the core's MLP on 300 synthetic samples, a few epochs of a few batches.
BASE = [
    "core/mlp-synthetic",
    "data.num_samples=300",
    "data.num_features=8",
    "model.hidden=[16]",
    "trainer.max_epochs=2",
    "scheduler=null",
]


def _cli(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    """The engine command in-process (same parser, handlers and error printing as the installed script)."""
    from engine.cli import main

    code = main(list(args))
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture
def cli() -> Any:
    """``cli(capsys, *args) -> (exit code, stdout, stderr)``."""
    return _cli


@pytest.fixture
def base() -> list[str]:
    return list(BASE)
