"""Plan-time checks of the recsys components (``Component(check=...)``): torch-free, at ``--dry-run`` too."""

from __future__ import annotations

from typing import Any

from engine import ConfigError

#: The ranking metrics' prefixes: every one is higher-is-better.
RANKING_METRICS = ("recall@", "ndcg@", "hit@")


def ranking(values: dict[str, Any], where: str, config: dict[str, Any]) -> None:
    """``recsys.ranking``: ``task.k`` is a list of positive integers; the best checkpoint is chosen by NDCG.

    Unless the user chose a monitor, ``checkpoint.monitor`` is ``val/ndcg@K`` for the smallest K of
    ``task.k``; a ranking metric as monitor (chosen or not) is maximised.
    """
    ks = values.get("k")
    if not ks or any(not isinstance(v, int) or isinstance(v, bool) or v < 1 for v in ks):
        raise ConfigError(f"{where}.k must be a list of positive integers, got {ks}", hint=f"e.g. {where}.k=[10,20]")
    checkpoint = config.get("checkpoint")
    if not isinstance(checkpoint, dict):
        return
    if checkpoint.get("monitor") is None:
        checkpoint["monitor"] = f"val/ndcg@{min(ks)}"
    monitor = checkpoint["monitor"]
    if isinstance(monitor, str) and any(m in monitor for m in RANKING_METRICS):
        checkpoint["mode"] = "max"
