"""Lightning callbacks the engine adds to every run."""

from __future__ import annotations

import random
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import ModelCheckpoint


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


class EpochLines(L.Callback):
    """One line per epoch on stderr (instead of progress-bar redraws where there is no terminal).

    ``epoch 3/10  step 198  train/loss 0.3123  val/accuracy 0.9100  val/loss 0.2977  1.2s``

    An epoch longer than ``every_s`` seconds also gets a line each ``every_s`` seconds
    (``epoch 1/1  step 500/4000  train/loss 2.1375  30.0s``), so a long epoch shows progress.
    """

    def __init__(self, every_s: float = 30.0) -> None:
        import time

        self.every_s = every_s
        self._clock = time.perf_counter
        self._started = self._last = self._clock()

    def on_train_epoch_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        self._started = self._last = self._clock()

    def on_train_batch_end(self, trainer: L.Trainer, *args: Any) -> None:
        now = self._clock()
        if now - self._last >= self.every_s:
            self._last = now
            steps = f"/{trainer.max_steps}" if trainer.max_steps > 0 else ""
            self._print(trainer, f"step {trainer.global_step}{steps}", ("train/",))

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        if not trainer.sanity_checking:
            self._print(trainer, f"step {trainer.global_step}", ("train/", "val/"))

    def _print(self, trainer: L.Trainer, where: str, prefixes: tuple[str, ...]) -> None:
        import sys

        if not trainer.is_global_zero:
            return
        metrics = trainer.callback_metrics
        # Headline figures only: per-class breakdowns (val/ap/circle) stay in the metrics CSV.
        keys = sorted(k for k in metrics if k.startswith(prefixes) and k.count("/") == 1 and metrics[k].numel() == 1)
        shown = "".join(f"  {k} {float(metrics[k]):.4f}" for k in keys)
        total = f"/{trainer.max_epochs}" if trainer.max_epochs and trainer.max_epochs > 0 else ""
        took = self._clock() - self._started
        line = f"epoch {trainer.current_epoch + 1}{total}  {where}{shown}  {took:.1f}s"
        print(line, file=sys.stderr, flush=True)


class BestCheckpoint(ModelCheckpoint):
    """Lightning's ``ModelCheckpoint``, made to keep a run's work and to travel with its directory.

    - ``last.ckpt`` is written at every checkpoint opportunity (each epoch, or every
      ``checkpoint.every_n_train_steps``), not only when the best improved: a kill loses at most
      one interval.
    - ``best_metrics`` remembers every logged metric when the best was saved: ``summary.json``
      and the end-of-run table show them beside the final figures (a run whose last epochs got
      worse is reported, and kept, as its best checkpoint). It travels in checkpoints.
    - Paths in its saved state are re-based on its own directory when a run was moved or copied,
      so a resumed run tests and keeps *its* checkpoints, never the original's.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.best_metrics: dict[str, float] = {}
        self.best_step: int | None = None
        self._last_written_step: int | None = None

    def _save_topk_checkpoint(self, trainer: L.Trainer, monitor_candidates: dict) -> None:
        super()._save_topk_checkpoint(trainer, monitor_candidates)
        self._save_last_checkpoint(trainer, monitor_candidates)  # every opportunity, not only a new best

    def _save_last_checkpoint(self, trainer: L.Trainer, monitor_candidates: dict) -> None:
        if self._last_written_step == trainer.global_step and self.last_model_path:
            return  # Lightning asks again right after the top-k save: once per step is enough
        super()._save_last_checkpoint(trainer, monitor_candidates)
        self._last_written_step = trainer.global_step

    def _update_best_and_save(self, current: torch.Tensor, trainer: L.Trainer, monitor_candidates: dict) -> None:
        # Set before saving, so that the checkpoint written now carries its own figures (testing
        # restores the callback's state from best.ckpt); put back if this one did not become the best.
        previous = self.best_metrics, self.best_step
        self.best_metrics = {
            k: float(v) for k, v in monitor_candidates.items() if k not in ("epoch", "step") and v.numel() == 1
        }
        self.best_step = int(trainer.global_step)
        super()._update_best_and_save(current, trainer, monitor_candidates)
        if self.best_model_score is None or float(self.best_model_score) != float(current):
            self.best_metrics, self.best_step = previous

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "engine_best_metrics": self.best_metrics, "engine_best_step": self.best_step}

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        state = dict(state_dict)
        old = state.get("dirpath")
        if self.dirpath is not None and old is not None and str(old) != str(self.dirpath):
            state = rebase(state, str(self.dirpath))  # a moved or copied run: its own files
        super().load_state_dict(state)
        self.best_metrics = dict(state.get("engine_best_metrics") or {})
        self.best_step = state.get("engine_best_step")


def rebase(state: dict[str, Any], dirpath: str) -> dict[str, Any]:
    """A ModelCheckpoint state whose file paths point into ``dirpath`` (same file names)."""
    import os

    def moved(path: Any) -> Any:
        return os.path.join(dirpath, os.path.basename(path)) if isinstance(path, str) and path else path

    out = {**state, "dirpath": dirpath}
    for key in ("best_model_path", "kth_best_model_path", "last_model_path"):
        if key in out:
            out[key] = moved(out[key])
    if isinstance(out.get("best_k_models"), dict):
        out["best_k_models"] = {moved(k): v for k, v in out["best_k_models"].items()}
    return out


# --------------------------------------------------------------------------- pruning


def _prunable(module: torch.nn.Module) -> list[tuple[str, torch.nn.Module]]:
    """Linear and convolution layers of ``module`` (their ``weight`` is pruned), in registration order."""
    kinds = (torch.nn.Linear, torch.nn.modules.conv._ConvNd)
    return [(n, m) for n, m in module.named_modules() if isinstance(m, kinds) and m.weight is not None]


class Prune(L.Callback):
    """Magnitude (or random, or structured) pruning with a sparsity schedule, made permanent at the end.

    At the end of each epoch from ``start_epoch`` to ``end_epoch`` the weights of every Linear and
    convolution layer are pruned with ``torch.nn.utils.prune`` a bit further, until ``amount`` of
    them are zero (``cubic``: most of it early, as in Zhu & Gupta 2017; ``linear``). The epochs after
    ``end_epoch`` fine-tune the pruned network; the best checkpoint is chosen among them only, so it
    has the full sparsity. Checkpoints always hold plain weights (pruned ones are zeros), and the
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
        self.targets: list[tuple[str, torch.nn.Module]] = []
        self.before: dict[str, float] = {}
        self.history: list[dict[str, float]] = []

    # ---- schedule

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if stage != "fit":
            return
        from engine.errors import ConfigError

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

    def _pruned(self, module: torch.nn.Module) -> int:
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
            for cb in trainer.checkpoint_callbacks:
                _reset_best(cb)

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


def _reset_best(checkpoint: Any) -> None:
    """Forget the best checkpoints so far (they predate the final pruning step)."""
    checkpoint.best_k_models = {}
    checkpoint.kth_best_model_path = ""
    checkpoint.best_model_score = None
    checkpoint.best_model_path = ""
    inf = torch.tensor(float("inf"))
    checkpoint.kth_value = inf if checkpoint.mode == "min" else -inf
    if isinstance(checkpoint, BestCheckpoint):
        checkpoint.best_metrics, checkpoint.best_step = {}, None
