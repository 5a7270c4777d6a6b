"""Pruning during training: the ``prune:`` section's Lightning callback (``torch.nn.utils.prune``)."""

from __future__ import annotations

from typing import Any

import lightning as L
from torch import nn

from engine import ConfigError
from engine.protocols import ChoosesBest, implements

#: The layers whose ``weight`` is pruned (public classes; the lazy ones subclass them).
_PRUNABLE = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.ConvTranspose1d, nn.ConvTranspose2d, nn.ConvTranspose3d)


def _prunable(module: nn.Module) -> list[tuple[str, nn.Module]]:
    """Linear and convolution layers of ``module`` (their ``weight`` is pruned), in registration order."""
    return [(n, m) for n, m in module.named_modules() if isinstance(m, _PRUNABLE) and m.weight is not None]


class Prune(L.Callback):
    """Magnitude (or random, or structured) pruning with a sparsity schedule, made permanent at the end.

    At the end of each epoch from ``start_epoch`` to ``end_epoch`` the weights of every Linear and
    convolution layer are pruned with ``torch.nn.utils.prune`` a bit further, until ``amount`` of
    them are zero (``cubic``: most of it early, as in Zhu & Gupta 2017; ``linear``). The epochs after
    ``end_epoch`` fine-tune the pruned network; the best checkpoint is chosen among them only, so it
    has the full sparsity (every callback choosing the best, `engine.protocols.ChoosesBest`,
    forgets the earlier ones). Checkpoints always hold plain weights (pruned ones are zeros), and the
    pruning is made permanent (``prune.remove``) when training ends, so export sees a plain model.

    ``ln_structured`` removes whole output channels (rows) by L2 norm, per layer; it leaves the last
    layer (the classifier's outputs) alone.
    """

    def __init__(
        self,
        amount: float = 0.5,
        method: str = "l1_unstructured",
        scope: str = "global",
        start_epoch: int | None = None,
        end_epoch: int | None = None,
        schedule: str = "cubic",
    ) -> None:
        self.amount, self.method, self.scope, self.schedule = amount, method, scope, schedule
        self.start_epoch, self.end_epoch = start_epoch, end_epoch
        self.epochs: list[int] = []
        self.targets: list[tuple[str, nn.Module]] = []
        self.before: dict[str, float] = {}
        self.history: list[dict[str, float]] = []

    # ---- schedule

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if stage != "fit":
            return
        max_epochs = trainer.max_epochs if trainer.max_epochs and trainer.max_epochs > 0 else None
        if max_epochs is None and (self.start_epoch is None or self.end_epoch is None):
            raise ConfigError(
                "prune needs trainer.max_epochs, or prune.start_epoch and prune.end_epoch",
                hint="pruning happens at epoch ends",
            )
        start = self.start_epoch if self.start_epoch is not None else max_epochs // 2  # type: ignore[operator]
        end = self.end_epoch if self.end_epoch is not None else max(start, (3 * max_epochs) // 4)  # type: ignore[operator]
        self.epochs = list(range(start, end + 1))
        self.targets = _prunable(pl_module)
        if self.method == "ln_structured":
            self.targets = self.targets[:-1]  # keep every output of the last layer (the classes)
        if not self.targets:
            raise ConfigError(
                f"prune: the model ({type(pl_module).__name__}) has no Linear or convolution layer to prune",
                hint="drop the prune section",
            )

    def target_at(self, epoch: int) -> float:
        """Sparsity reached at the end of ``epoch``."""
        if not self.epochs or epoch < self.epochs[0]:
            return 0.0
        k = min(self.epochs.index(epoch) + 1 if epoch in self.epochs else len(self.epochs), len(self.epochs))
        frac = k / len(self.epochs)
        return self.amount * (frac if self.schedule == "linear" else 1 - (1 - frac) ** 3)

    # ---- applying

    @staticmethod
    def _pruned(module: nn.Module) -> int:
        mask = getattr(module, "weight_mask", None)
        if mask is not None:
            return int((mask == 0).sum())
        return int((module.weight == 0).sum())

    def sparsity(self) -> float:
        """Fraction of zero weights over the pruned layers."""
        total = sum(m.weight.numel() for _, m in self.targets)
        return sum(self._pruned(m) for _, m in self.targets) / max(total, 1)

    def _step(self, target: float) -> None:
        from torch.nn.utils import prune

        if self.method == "ln_structured":
            for _, m in self.targets:
                rows = m.weight.shape[0]
                gone = int((m.weight.detach().flatten(1).abs().sum(1) == 0).sum())
                extra = round(target * rows) - gone
                if extra > 0:
                    prune.ln_structured(m, "weight", amount=extra, n=2, dim=0)
            return
        method = prune.L1Unstructured if self.method == "l1_unstructured" else prune.RandomUnstructured
        if self.scope == "global":
            total = sum(m.weight.numel() for _, m in self.targets)
            extra = round(target * total) - sum(self._pruned(m) for _, m in self.targets)
            if extra > 0:
                prune.global_unstructured([(m, "weight") for _, m in self.targets], method, amount=extra)
            return
        for _, m in self.targets:
            extra = round(target * m.weight.numel()) - self._pruned(m)
            if extra > 0:
                method.apply(m, "weight", amount=extra)

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        # Resumed after pruning began: checkpoints hold plain weights; pin their zeros with masks again.
        if self.epochs and trainer.current_epoch > self.epochs[0]:
            from torch.nn.utils import prune

            for _, m in self.targets:
                if not hasattr(m, "weight_mask"):
                    prune.custom_from_mask(m, "weight", mask=(m.weight.detach() != 0).to(m.weight.dtype))

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        epoch = trainer.current_epoch
        if epoch not in self.epochs:
            return
        if epoch == self.epochs[0]:
            self.before = {
                k: float(v) for k, v in trainer.callback_metrics.items() if k.startswith("val/") and v.numel() == 1
            }
        self._step(self.target_at(epoch))
        sparsity = self.sparsity()
        self.history.append({"epoch": epoch, "sparsity": round(sparsity, 6)})
        pl_module.log("prune/sparsity", sparsity)
        if epoch == self.epochs[-1]:
            # The final sparsity is reached: the best checkpoint is chosen among the epochs from here on.
            for callback in trainer.callbacks:
                if implements(callback, ChoosesBest):
                    callback.reset_best()

    def on_save_checkpoint(self, trainer: L.Trainer, pl_module: L.LightningModule, checkpoint: dict[str, Any]) -> None:
        checkpoint["state_dict"] = plain_state_dict(checkpoint["state_dict"])

    def on_train_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        from torch.nn.utils import prune

        for _, m in self.targets:
            if hasattr(m, "weight_mask"):
                prune.remove(m, "weight")

    def summary_info(self) -> dict[str, Any]:
        """Recorded in summary.json: the schedule, the sparsity reached and the validation metrics before pruning."""
        return {
            "pruning": {
                "method": self.method,
                "scope": self.scope if self.method != "ln_structured" else "layer",
                "amount": self.amount,
                "epochs": [self.epochs[0], self.epochs[-1]] if self.epochs else [],
                "sparsity": round(self.sparsity(), 6) if self.targets else 0.0,
                "layers": len(self.targets),
                "weights": sum(m.weight.numel() for _, m in self.targets),
                "val_before": self.before,
                "history": self.history,
            }
        }


def plain_state_dict(state: dict[str, Any]) -> dict[str, Any]:
    """``X.weight_orig`` and ``X.weight_mask`` (pruning re-parametrisation) folded into a plain ``X.weight``."""
    out: dict[str, Any] = {}
    for key, value in state.items():
        if key.endswith("_mask") and key[: -len("_mask")] + "_orig" in state:
            continue
        if key.endswith("_orig") and key[: -len("_orig")] + "_mask" in state:
            base = key[: -len("_orig")]
            out[base] = value * state[base + "_mask"]
        else:
            out[key] = value
    return out
