"""DP-SGD for a Lightning run, as one callback: what Opacus' ``PrivacyEngine.make_private`` does, in Lightning's hooks.

``make_private(module, optimizer, data_loader)`` does three things; here each happens where Lightning
lets a callback reach the object, and nothing is replaced that checkpoints or later commands see:

1. **per-sample gradients**: Opacus' ``GradSampleHooks`` attach to the task's layers (``on_fit_start``)
   without wrapping the module, so the state dict, checkpoints, ``model.safetensors`` and every
   command reopening the run see the plain model; removed again when fitting ends;
2. **Poisson sampling**: the run's training DataLoader is rebuilt with Opacus' Poisson batch sampler
   (`engine_privacy.sampling`). The callback's ``setup`` gives the datamodule an instance-level
   ``train_dataloader`` that wraps its own (Lightning asks the datamodule for it by name); removed on
   ``teardown``;
3. **the private optimizer**: the task's one optimizer is wrapped in Opacus' ``DPOptimizer`` (clip each
   sample's gradient at ``max_grad_norm``, add Gaussian noise, average by the expected batch size) and
   put in its place through the strategy's public ``optimizers`` setter at ``on_train_start`` (after a
   resumed run's optimizer state was restored into the original, which the DPOptimizer shares).
   Learning-rate schedulers keep working: they change the original's param groups, the DPOptimizer's.

The accountant (Opacus' PRV, RDP or GDP) is stepped by the DPOptimizer's step hook, as Opacus does; its
history travels in checkpoints (plain numbers), so a resumed run keeps counting. The epsilon spent is
logged as ``val/epsilon`` at the end of each epoch's training (before validation, so the best checkpoint
records the epsilon of its own weights), kept per epoch, and reported in ``summary.json``.
"""

from __future__ import annotations

import math
import sys
import warnings
from typing import Any

import lightning as L

from engine import ConfigError

METRIC = "val/epsilon"


def quiet() -> None:
    """Silence two expected warnings: Opacus' backward hooks on a first layer whose input needs no gradient
    (said once per layer), and the PRV accountant bounding its domain at the edge of its RDP orders."""
    warnings.filterwarnings("ignore", message="Full backward hook is firing when gradients are computed")
    warnings.filterwarnings("ignore", message="Optimal order is the (largest|smallest) alpha")


class DPSGD(L.Callback):
    """Train the run with DP-SGD (see the module docstring); the ``privacy`` section's values are its arguments."""

    def __init__(
        self,
        noise_multiplier: float | None = None,
        target_epsilon: float | None = None,
        delta: float | None = None,
        max_grad_norm: float = 1.0,
        accountant: str = "prv",
        seed: int = 0,
    ) -> None:
        from opacus.accountants import create_accountant

        if (noise_multiplier is None) == (target_epsilon is None):
            raise ConfigError("privacy: set exactly one of noise_multiplier and target_epsilon")
        self.noise_multiplier, self.target_epsilon = noise_multiplier, target_epsilon
        self.delta_option, self.max_grad_norm, self.mechanism, self.seed = delta, max_grad_norm, accountant, seed
        self.accountant = create_accountant(mechanism=accountant)
        self.dataset_size: int | None = None
        self.sample_rate: float | None = None
        self.steps_per_epoch: int | None = None
        self.planned_steps: int | None = None
        self.epochs: list[dict[str, Any]] = []
        self._hooks: Any = None
        self._inplace: list[Any] = []
        self._datamodule: Any = None
        self._optimizer: Any = None
        self._cache: tuple[int, float] | None = None

    @property
    def delta(self) -> float:
        """The delta of the guarantee: the option, else 1 / the number of training samples."""
        if self.delta_option is not None:
            return float(self.delta_option)
        return 1.0 / self.dataset_size if self.dataset_size else 1e-5

    @property
    def expected_batch_size(self) -> int:
        return int((self.dataset_size or 0) * (self.sample_rate or 0.0))

    # ------------------------------------------------------------------ Lightning hooks

    def check_run(self, trainer: L.Trainer, task: L.LightningModule, datamodule: Any) -> None:
        """Before the run directory exists (the core's ``ChecksRun``): one process, and every layer of the
        built task can compute per-sample gradients (Opacus' ``ModuleValidator``)."""
        from engine_privacy.validate import check_trainable

        if trainer.world_size > 1:
            raise ConfigError(
                f"privacy: the run uses {trainer.world_size} processes; DP-SGD runs in one here",
                hint="use trainer.devices=1",
            )
        was = task.training
        task.train()
        try:
            check_trainable(task)
        finally:
            task.train(was)

    def setup(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if stage != "fit":
            return
        quiet()
        self.check_run(trainer, pl_module, trainer.datamodule)  # also when used outside the engine's runner
        datamodule = trainer.datamodule
        if datamodule is None:
            raise ConfigError("privacy: the run has no datamodule to sample training batches from")
        self._wrap_train_loader(trainer, datamodule)

    def _wrap_train_loader(self, trainer: L.Trainer, datamodule: Any) -> None:
        from engine_privacy.sampling import poisson_loader

        own = datamodule.train_dataloader

        def train_dataloader() -> Any:
            loader = poisson_loader(own(), self.seed, lambda: trainer.current_epoch)
            self.dataset_size = len(loader.dataset)  # type: ignore[arg-type]
            self.sample_rate = float(loader.batch_sampler.sample_rate)  # type: ignore[union-attr]
            self.steps_per_epoch = len(loader)
            return loader

        datamodule.train_dataloader = train_dataloader  # Lightning calls datamodule.train_dataloader()
        self._datamodule = datamodule

    def on_fit_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        from opacus.grad_sample import GradSampleHooks

        if len(trainer.optimizers) != 1:
            raise ConfigError(f"privacy: DP-SGD needs exactly one optimizer, the task has {len(trainer.optimizers)}")
        # In-place activations (nn.ReLU(inplace=True)) would modify the outputs the backward hooks hold:
        # switched off for the fit (the same values, no weights involved), back on in teardown.
        self._inplace = [m for m in pl_module.modules() if getattr(m, "inplace", None) is True]
        for m in self._inplace:
            m.inplace = False
        self._hooks = GradSampleHooks(pl_module, batch_first=True, loss_reduction="mean", strict=True)
        self._hooks.forbid_grad_accumulation()

    def on_train_start(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        from opacus.optimizers import DPOptimizer

        if self.sample_rate is None:
            raise ConfigError("privacy: the training DataLoader was not built through the privacy sampler")
        steps = trainer.estimated_stepping_batches
        self.planned_steps = None if steps == float("inf") else int(steps)
        if self.noise_multiplier is None:
            self.noise_multiplier = self._calibrate()
        original = trainer.optimizers[0]
        self._optimizer = DPOptimizer(
            original,
            noise_multiplier=float(self.noise_multiplier),
            max_grad_norm=float(self.max_grad_norm),
            expected_batch_size=max(1, self.expected_batch_size),
            loss_reduction="mean",
        )
        self._optimizer.attach_step_hook(self.accountant.get_optimizer_hook_fn(sample_rate=self.sample_rate))
        trainer.strategy.optimizers = [self._optimizer]

    def _calibrate(self) -> float:
        """The noise multiplier that spends ``target_epsilon`` over the planned steps (Opacus' search)."""
        from opacus.accountants.utils import get_noise_multiplier

        assert self.target_epsilon is not None and self.sample_rate is not None
        if not self.planned_steps:
            raise ConfigError(
                "privacy.target_epsilon needs a run of planned length", hint="set trainer.max_epochs or max_steps"
            )
        try:
            quiet()
            return float(
                get_noise_multiplier(
                    target_epsilon=self.target_epsilon,
                    target_delta=self.delta,
                    sample_rate=self.sample_rate,
                    steps=self.planned_steps,
                    accountant=self.mechanism,
                    epsilon_tolerance=0.01,
                )
            )
        except ValueError as exc:
            raise ConfigError(
                f"privacy.target_epsilon={self.target_epsilon} cannot be reached in {self.planned_steps} steps "
                f"at sample rate {self.sample_rate:.4g} (delta {self.delta:.3g}): {exc}",
                hint="allow a larger epsilon, fewer steps (trainer.max_epochs) or a smaller data.batch_size",
            ) from None

    def on_train_batch_end(
        self, trainer: L.Trainer, pl_module: L.LightningModule, outputs: Any, batch: Any, batch_idx: int
    ) -> None:
        last_step = 0 < trainer.max_steps <= trainer.global_step
        if trainer.is_last_batch or last_step:
            # before validation, so the checkpoint saved after it records the epsilon of its own weights,
            # and the epoch's record: a checkpoint taken before on_train_epoch_end (at the end of validation,
            # or by a callback called before this one) holds it, and a resumed or tested run keeps it
            pl_module.log(METRIC, self._record(trainer), on_step=True, on_epoch=False, logger=False)

    def on_train_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        eps = self._record(trainer)
        pl_module.log(METRIC, eps, on_step=False, on_epoch=True)  # the loggers' per-epoch row (metrics.csv)

    def _record(self, trainer: L.Trainer) -> float:
        """The epsilon spent by the end of this epoch, recorded in `epochs`."""
        eps = self.epsilon(trainer.global_step)
        record = {"epoch": trainer.current_epoch, "step": trainer.global_step, "epsilon": round(eps, 6)}
        self.epochs = [e for e in self.epochs if e["epoch"] != record["epoch"]] + [record]
        return eps

    def teardown(self, trainer: L.Trainer, pl_module: L.LightningModule, stage: str) -> None:
        if stage == "fit":
            self._restore(trainer)

    def on_exception(self, trainer: L.Trainer, pl_module: L.LightningModule, exception: BaseException) -> None:
        self._restore(trainer)  # a failed or interrupted fit leaves the model and the datamodule as they were

    def _restore(self, trainer: L.Trainer) -> None:
        """Remove the hooks, give the datamodule its own loader and the strategy its own optimizer back."""
        if self._hooks is not None:
            self._hooks.cleanup()
            self._hooks = None
        for m in self._inplace:
            m.inplace = True
        self._inplace = []
        if self._datamodule is not None and "train_dataloader" in vars(self._datamodule):
            del self._datamodule.train_dataloader  # back to the datamodule's own method
        if self._optimizer is not None:
            trainer.strategy.optimizers = [self._optimizer.original_optimizer]
            self._optimizer = None

    # ------------------------------------------------------------------ accounting and reporting

    def epsilon(self, step: int | None = None) -> float:
        """The epsilon spent so far (for the accountant's steps; cached per training step)."""
        if not self.accountant.history:
            return 0.0
        if step is not None and self._cache is not None and self._cache[0] == step:
            return self._cache[1]
        with warnings.catch_warnings():
            quiet()
            eps = float(self.accountant.get_epsilon(delta=self.delta))
        if step is not None:
            self._cache = (step, eps)
        return eps

    @property
    def steps_taken(self) -> int:
        return int(sum(n for _, _, n in self.accountant.history))

    def summary_info(self) -> dict[str, Any]:
        """Recorded in summary.json: the guarantee reached and how it was computed."""
        eps = self.epsilon()
        return {
            "privacy": {
                "epsilon": eps if math.isfinite(eps) else None,
                "delta": self.delta,
                "noise_multiplier": self.noise_multiplier,
                "target_epsilon": self.target_epsilon,
                "max_grad_norm": self.max_grad_norm,
                "accountant": self.mechanism,
                "sample_rate": self.sample_rate,
                "expected_batch_size": self.expected_batch_size,
                "dataset_size": self.dataset_size,
                "steps": self.steps_taken,
                "planned_steps": self.planned_steps,
                "history": [list(h) for h in self.accountant.history],
                "epochs": self.epochs,
            }
        }

    def state_dict(self) -> dict[str, Any]:
        # Plain numbers only: checkpoints load with torch.load(weights_only=True).
        return {
            "history": [[float(s), float(q), int(n)] for s, q, n in self.accountant.history],
            "noise_multiplier": self.noise_multiplier,
            "epochs": [dict(e) for e in self.epochs],
        }

    def load_state_dict(self, state_dict: dict[str, Any]) -> None:
        history = [(float(s), float(q), int(n)) for s, q, n in state_dict.get("history", [])]
        if sum(n for _, _, n in history) < self.steps_taken:
            # trainer.test(ckpt_path="best") restores an earlier checkpoint's state: the steps after it were
            # taken all the same (and chose that checkpoint), so the budget spent stays the whole run's
            return
        self.accountant.history = history
        noise = state_dict.get("noise_multiplier")
        if noise is not None:
            if self.noise_multiplier is not None and not math.isclose(float(noise), float(self.noise_multiplier)):
                print(
                    f"privacy: continuing with the checkpoint's noise multiplier {noise:.4g} "
                    f"(not {self.noise_multiplier:.4g})",
                    file=sys.stderr,
                )
            self.noise_multiplier = float(noise)
        self.epochs = [dict(e) for e in state_dict.get("epochs", [])]
        self._cache = None
