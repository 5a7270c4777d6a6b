"""Lightning callbacks the engine adds to every run."""

from __future__ import annotations

import random
from typing import Any

import lightning as L
import torch


class RNGState(L.Callback):
    """Save the global random states in checkpoints and restore them on resume.

    Lightning restores model, optimizer and loop state; with the random states
    too, a resumed run continues exactly as the uninterrupted run would have.
    """

    def on_save_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]) -> None:
        # Plain tensors and numbers only, so checkpoints load with torch.load(weights_only=True).
        version, keys, gauss = random.getstate()
        state: dict[str, Any] = {"torch": torch.get_rng_state(), "python": [version, list(keys), gauss]}
        try:
            import numpy as np

            name, np_keys, pos, has_gauss, cached = np.random.get_state()
            state["numpy"] = [name, torch.from_numpy(np_keys.astype("int64")), pos, has_gauss, cached]
        except ImportError:
            pass
        checkpoint["engine_rng_state"] = state

    def on_load_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]) -> None:
        state = checkpoint.get("engine_rng_state")
        if not state:
            return
        torch.set_rng_state(state["torch"])
        version, keys, gauss = state["python"]
        random.setstate((version, tuple(keys), gauss))
        if "numpy" in state:
            import numpy as np

            name, np_keys, pos, has_gauss, cached = state["numpy"]
            np.random.set_state((name, np_keys.numpy().astype(np.uint32), pos, has_gauss, cached))
