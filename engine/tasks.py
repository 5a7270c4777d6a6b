"""What a task (a ``LightningModule`` of the ``engine_tasks`` hook) may use from the core (public).

- :func:`configure_optimizers`: the optimizer and scheduler slots turned into Lightning's answer
  (``optimizer.param_groups`` applied by parameter name); :func:`eval_mode` for a task's checks;
  :func:`matches`: the glob rule on parameter names (``features.*``, or a bare prefix).
- :class:`SupervisedTask`: the built-in supervised task, to subclass.
- The supervised problem types (``classification``, ``multilabel``, ``regression``): :func:`score`,
  :func:`metrics`, :data:`PRIMARY`, :func:`to_probabilities`, :func:`match_target`: one table for
  every place that scores a supervised model.
"""

from engine._builtins.problems import (
    DEFAULT_METRICS,
    METRICS,
    PRIMARY,
    match_target,
    metrics,
    prepare,
    score,
    to_probabilities,
)
from engine._builtins.supervised import SupervisedTask
from engine._run.tasks import configure_optimizers, eval_mode, matches

__all__ = [
    "DEFAULT_METRICS",
    "METRICS",
    "PRIMARY",
    "SupervisedTask",
    "configure_optimizers",
    "eval_mode",
    "match_target",
    "matches",
    "metrics",
    "prepare",
    "score",
    "to_probabilities",
]
