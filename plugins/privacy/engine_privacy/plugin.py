"""The privacy plugin: a ``privacy:`` config section that trains supervised runs with DP-SGD (Opacus).

Declarations only: neither torch nor opacus is imported here (opacus alone takes seconds), so
listing, ``--help`` and ``--dry-run`` stay fast. The section's keys are the fields of
`engine_privacy.spec.Privacy`; its check refuses at ``--dry-run`` what DP-SGD cannot train.
When the section is on, `engine_callbacks` adds the callback that makes the run private
(`engine_privacy.callback.DPSGD`).
"""

from __future__ import annotations

from typing import Any

from engine import Section, hookimpl

ENGINE_API = ">=1,<2"


@hookimpl
def engine_config_sections() -> list[Section]:
    return [
        Section(
            "privacy",
            "engine_privacy.spec:Privacy",
            "Differentially private training (DP-SGD, Opacus): per-sample clipping, noise, Poisson sampling",
            optional=True,
            check="engine_privacy.spec:check_privacy",
        )
    ]


@hookimpl
def engine_callbacks(config: dict[str, Any]) -> list[Any]:
    if config.get("privacy") is None:  # off unless the user set a privacy.* key (or privacy={})
        return []
    from engine_privacy.callback import DPSGD

    return [DPSGD(**config["privacy"], seed=int(config["seed"]))]
