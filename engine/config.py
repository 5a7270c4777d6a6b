"""The configuration API in one place: compose a run's config, then check and resolve it.

::

    from engine.config import compose, validate
    cfg = validate(compose(registry, "core/mlp-synthetic", overrides=["trainer.max_epochs=2"]), registry)

:mod:`engine.compose` turns a recipe, files and overrides into plain data (names qualified,
``engine_adjust_config`` applied); :mod:`engine.plan` checks it completely and resolves it into
the :class:`~engine.plan.Plan` that building consumes. This module only gathers their public
functions.
"""

from __future__ import annotations

from engine.compose import DEFAULTS, compose, defaults, load_file, merge, parse_override
from engine.params import check_params
from engine.plan import LOADER_PARAMS, Plan, make_plan, validate

__all__ = [
    "DEFAULTS",
    "LOADER_PARAMS",
    "Plan",
    "check_params",
    "compose",
    "defaults",
    "load_file",
    "make_plan",
    "merge",
    "parse_override",
    "validate",
]
