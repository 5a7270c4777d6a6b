"""What a task (a ``LightningModule`` of the ``engine_tasks`` hook) may use from the core (public).

`configure_optimizers`, `matches`, the built-in `SupervisedTask`, and the supervised
problem types' one table for every place that scores a supervised model (`score` …).
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

__all__ = ["DEFAULT_METRICS", "METRICS", "PRIMARY", "SupervisedTask", "configure_optimizers", "eval_mode"]
__all__ += ["match_target", "matches", "metrics", "prepare", "score", "to_probabilities"]
