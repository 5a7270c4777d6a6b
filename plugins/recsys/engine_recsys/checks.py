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


def sasrec(values: dict[str, Any], where: str, config: dict[str, Any]) -> None:
    """``recsys.sasrec`` at plan time: windows of ``max_length`` unless set, and a next-item loss."""
    data = config.get("data")
    if isinstance(data, dict) and "sequence_length" in data:
        if data["sequence_length"] is None:
            data["sequence_length"] = values["max_length"]
        elif data["sequence_length"] > values["max_length"]:
            raise ConfigError(
                f"data.sequence_length={data['sequence_length']} is longer than {where}.max_length="
                f"{values['max_length']}",
                hint=f"set {where}.max_length to at least data.sequence_length",
            )
    loss = config.get("loss")
    name = loss.get("name") if isinstance(loss, dict) else loss
    if where == "model" and name is not None and not str(name).endswith("next_item_ce"):
        raise ConfigError(
            f"recsys.sasrec learns the next item of each position: loss={name} does not fit it",
            hint="set loss=recsys.next_item_ce",
        )
