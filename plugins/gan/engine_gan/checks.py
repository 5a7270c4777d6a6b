"""Plan-time checks of the GAN plugin's components (``Component(check=...)``): torch-free, at ``--dry-run`` too."""

from __future__ import annotations

from typing import Any


def adversarial(values: dict[str, Any], where: str, config: dict[str, Any]) -> None:
    """GAN runs keep the checkpoint with the best ``val/score`` unless the user chose a monitor.

    The generator and discriminator losses say nothing about sample quality (they chase each
    other), so ``val/loss`` would keep an arbitrary checkpoint.
    """
    checkpoint = config.get("checkpoint")
    if isinstance(checkpoint, dict) and checkpoint.get("monitor") is None:
        checkpoint["monitor"] = "val/score"
        checkpoint["mode"] = "max"
