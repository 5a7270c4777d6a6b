"""What `engine rl --help` and the evaluation's messages tell: options of the evaluation are `KEY=VALUE` items."""

from __future__ import annotations

from typing import Any

import pytest

from engine import ConfigError


def test_help_and_messages_show_evaluation_options_as_key_value(cli: Any) -> None:
    out = cli("rl", "--help")
    assert out.returncode == 0 and "episodes=100" in out.stdout and "--episodes" not in out.stdout
    from engine_rl.tasks.common import run_episodes

    with pytest.raises(ConfigError) as err:
        run_episodes(None, lambda x: x, episodes=0, seed=0)
    assert "--episodes" not in err.value.message and "episodes=N" in (err.value.hint or "")
