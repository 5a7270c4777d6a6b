"""What every task needs from the core: its optimizer and scheduler, eval mode, parameter groups by name."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from engine._run.build import Factory, matches

__all__ = ["configure_optimizers", "eval_mode", "matches"]


def configure_optimizers(
    module: Any,
    optimizer: Callable[..., Any],
    scheduler: Callable[..., Any] | None = None,
    params: Iterable[Any] | None = None,
) -> Any:
    """What ``LightningModule.configure_optimizers`` returns for a task's optimizer and scheduler slots.

    ``optimizer`` and ``scheduler`` are the factories the core passes into the slots; ``params`` defaults
    to ``module``'s named parameters, so that ``optimizer.param_groups`` (globs on names) applies. The
    scheduler is told ``total_steps`` and ``max_epochs``; one returned bare is stepped once per epoch::

        def configure_optimizers(self):
            return configure_optimizers(self, self.optimizer_factory, self.scheduler_factory)
    """
    if params is None and isinstance(optimizer, Factory):
        opt = optimizer.with_names(module.named_parameters())
    else:
        opt = optimizer(module.parameters() if params is None else params)
    if scheduler is None:
        return opt
    trainer = module.trainer
    sched = scheduler(opt, total_steps=int(trainer.estimated_stepping_batches), max_epochs=trainer.max_epochs)
    if not isinstance(sched, dict):
        sched = {"scheduler": sched, "interval": "epoch"}
    return {"optimizer": opt, "lr_scheduler": sched}


@contextmanager
def eval_mode(*modules: Any) -> Iterator[None]:
    """Run the block with ``modules`` in eval mode and without gradients, then restore their modes.

    For a task's ``check_data``::

        x, y = sample_batch(datamodule)
        with eval_mode(self.model):
            self.loss(self.model(x), y)
    """
    import torch

    was = [m.training for m in modules]
    for m in modules:
        m.eval()
    try:
        with torch.no_grad():
            yield
    finally:
        for m, mode in zip(modules, was, strict=True):
            m.train(mode)
