"""What every task needs from the core: its optimizer and scheduler, eval mode, parameter groups by name."""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

from engine._contract.errors import ConfigError


def matches(name: str, patterns: Iterable[str]) -> bool:
    """Whether parameter ``name`` matches one of the glob ``patterns`` (a bare prefix also matches: ``head``)."""
    return any(fnmatch.fnmatchcase(name, p) or name.startswith(p + ".") for p in patterns)


def configure_optimizers(
    module: Any,
    optimizer: Callable[..., Any],
    scheduler: Callable[..., Any] | None = None,
    params: Iterable[Any] | None = None,
) -> Any:
    """What ``LightningModule.configure_optimizers`` returns for a task's optimizer and scheduler slots.

    ``optimizer`` and ``scheduler`` are the factories the core passes into a task's
    slots; ``params`` defaults to all of ``module``'s parameters (pass parameter
    groups to tune them separately), named, so that ``optimizer.param_groups``
    (globs on parameter names) applies. The scheduler is told the run's
    ``total_steps`` and ``max_epochs``; one that returns a bare scheduler is
    stepped once per epoch::

        def configure_optimizers(self):
            return configure_optimizers(self, self.optimizer_factory, self.scheduler_factory)
    """
    from engine._run.build import Factory

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


def param_groups(named: Iterable[tuple[str, Any]], groups: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Torch parameter groups from ``optimizer.param_groups``: each parameter joins the first group matching it.

    Names are matched as given and without their first component (the task's slot attribute:
    ``model.features.0.weight`` matches ``features.*``). Parameters matched by no group form the
    default group (the optimizer's own settings). Frozen parameters stay in their group, so
    unfreezing them later trains them with the group's settings.
    """
    named = list(named)
    buckets: list[list[Any]] = [[] for _ in groups]
    rest: list[Any] = []
    for name, param in named:
        short = name.split(".", 1)[1] if "." in name else name
        for i, group in enumerate(groups):
            patterns = [group["params"]] if isinstance(group["params"], str) else list(group["params"])
            if matches(name, patterns) or matches(short, patterns):
                buckets[i].append(param)
                break
        else:
            rest.append(param)
    out = []
    for i, (group, params) in enumerate(zip(groups, buckets, strict=True)):
        if not params:
            raise ConfigError(
                f"optimizer.param_groups[{i}]: params {group['params']!r} match no parameter",
                hint=f"parameter names look like: {', '.join(n for n, _ in named[:4])}, …",
            )
        settings = {k: tuple(v) if isinstance(v, list) else v for k, v in group.items() if k != "params"}
        out.append({"params": params, **settings})
    if rest:
        out.append({"params": rest})
    return out
