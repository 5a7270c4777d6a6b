"""The ``privacy:`` config section and its ``--dry-run`` check (torch-free: nothing heavy is imported here).

The dataclass's fields are the section's keys (read from this source by the engine, typed and
range-checked before anything is built); `check_privacy` refuses what DP-SGD cannot do with
the rest of the config: another task than the supervised one, gradient accumulation or clipping
by Lightning, several processes, a model Opacus cannot compute per-sample gradients for.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal

from annotated_types import Gt, Lt

from engine import ConfigError

#: The task DP-SGD is wired for: one model, one optimizer, a mean-reduced loss over (input, target) batches.
SUPERVISED = "core.supervised"


@dataclass
class Privacy:
    """Differentially private training with DP-SGD (Opacus): per-sample clipping, Gaussian noise, Poisson sampling.

    Args:
        noise_multiplier: standard deviation of the Gaussian noise relative to max_grad_norm (sigma). Set it, or
            target_epsilon.
        target_epsilon: the privacy budget for the whole run: the noise multiplier is chosen so that the planned
            steps (trainer.max_epochs or max_steps) spend exactly this epsilon. Set it, or noise_multiplier.
        delta: the delta of (epsilon, delta)-DP (default: 1 / the number of training samples).
        max_grad_norm: each sample's gradient is clipped to this L2 norm before the noise is added.
        accountant: how the epsilon spent is computed: prv (Opacus' default, tightest), rdp, or gdp.
    """

    noise_multiplier: Annotated[float, Gt(0)] | None = None
    target_epsilon: Annotated[float, Gt(0)] | None = None
    delta: Annotated[float, Gt(0), Lt(1)] | None = None
    max_grad_norm: Annotated[float, Gt(0)] = 1.0
    accountant: Literal["prv", "rdp", "gdp"] = "prv"


_FIX_DDP = "DP-SGD runs in one process here (Opacus' DPDDP is not wired in); use trainer.devices=1"


def check_privacy(values: dict[str, Any], where: str, config: dict[str, Any]) -> None:
    """Refuse, before any compute, a ``privacy`` section that cannot work with the rest of the config."""
    if values["noise_multiplier"] is None and values["target_epsilon"] is None:
        raise ConfigError(
            f"{where} needs the noise: set {where}.noise_multiplier or {where}.target_epsilon",
            hint=f"e.g. {where}.target_epsilon=3 (the noise is then chosen for the planned steps)",
        )
    if values["noise_multiplier"] is not None and values["target_epsilon"] is not None:
        raise ConfigError(
            f"{where}.noise_multiplier and {where}.target_epsilon both set: the target decides the noise, set one"
        )
    task = config["task"]["name"]
    if task != SUPERVISED:
        raise ConfigError(
            f"{where} works with the supervised task ({SUPERVISED}), not {task}",
            hint="DP-SGD needs one model, one optimizer and a loss averaged over (input, target) batches",
        )
    _check_trainer(config.get("trainer") or {}, values, where)
    if config.get("prune") is not None:
        raise ConfigError(
            f"{where} cannot be combined with prune: pruning re-parametrises the weights (weight_orig * mask) "
            "that Opacus computes per-sample gradients for",
            hint="train privately first, then prune in a second run (model.init_from=RUN)",
        )
    model = config.get("model") or {}
    if model.get("unfreeze_at_epoch") is not None:
        raise ConfigError(
            f"{where}: model.unfreeze_at_epoch cannot be combined with DP-SGD (per-sample gradients are set up for "
            "the parameters trainable when training starts)",
            hint="freeze for the whole run (model.freeze) or not at all",
        )
    if model.get("name"):
        from engine_privacy.static import check_model

        check_model(model, where)


def _check_trainer(trainer: dict[str, Any], values: dict[str, Any], where: str) -> None:
    accumulate = trainer.get("accumulate_grad_batches", 1)
    if accumulate not in (None, 1):
        raise ConfigError(
            f"{where}: trainer.accumulate_grad_batches={accumulate} cannot be used with DP-SGD: with Poisson "
            "sampling every optimizer step is one sampled batch",
            hint="raise data.batch_size instead (the expected batch size is what the privacy accounting uses)",
        )
    clip = trainer.get("gradient_clip_val")
    if clip not in (None, 0, 0.0):
        raise ConfigError(
            f"{where}: trainer.gradient_clip_val={clip} clips the summed gradient; DP-SGD clips each sample's "
            f"gradient at {where}.max_grad_norm",
            hint=f"remove trainer.gradient_clip_val and set {where}.max_grad_norm",
        )
    precision = str(trainer.get("precision", ""))
    if precision in ("16", "16-mixed"):
        raise ConfigError(
            f"{where}: trainer.precision={precision} scales the loss (a GradScaler), and Opacus would clip the "
            "scaled per-sample gradients",
            hint="use trainer.precision=32-true (or bf16-mixed, which needs no scaler)",
        )
    devices, nodes = trainer.get("devices"), trainer.get("num_nodes", 1)
    strategy = str(trainer.get("strategy") or "")
    many = (isinstance(devices, int) and devices > 1) or (isinstance(devices, (list, tuple)) and len(devices) > 1)
    if many or devices == -1 or (nodes or 1) > 1 or any(s in strategy for s in ("ddp", "fsdp", "deepspeed")):
        raise ConfigError(f"{where}: several processes (devices={devices}, strategy={strategy or 'auto'})", _FIX_DDP)
    if values["target_epsilon"] is not None:
        epochs, steps = trainer.get("max_epochs"), trainer.get("max_steps")
        if (epochs is None or epochs < 0) and (steps is None or steps < 0):
            raise ConfigError(
                f"{where}.target_epsilon needs a run of planned length (the noise is chosen for its steps)",
                hint="set trainer.max_epochs or trainer.max_steps",
            )
