"""The plugin contract: every hook a plugin may implement (docs/hooks.md has a runnable example of each).

A plugin is a module (or object) whose functions decorated with ``engine.hookimpl`` are named like the
specifications below, made known through an entry point of the ``engine.plugins`` group::

    [project.entry-points."engine.plugins"]
    vision = "engine_vision.plugin"        # the plugin's name qualifies its components: vision.resnet

Registration hooks (``engine_models`` … ``engine_pipeline_steps``) run once, when the registry is first
needed, and return *declarations* whose targets are ``"module:attr"`` strings, imported only when a run
is built: keep the plugin module free of torch so listing, ``--help`` and ``--dry-run`` stay fast.

**Order.** pluggy calls every hook: the core first, then the plugins in alphabetical order of name,
whatever the install order; ``@hookimpl(tryfirst=True)``, ``trylast`` and ``wrapper`` work as in
pluggy. A later plugin sees what earlier ones did. A command, option or section two plugins add is
kept by the core, the plugin of that name, else the distribution installed first. ``ENGINE_TRACE_HOOKS=1``
prints every call. **Names**: every hook receives component names qualified (``vision.resnet``,
``core.supervised``): compare them with ``==``.

**Failures.** A plugin that fails to import, implements an unknown hook, raises in a registration
hook or returns what its hook does not promise is *broken*: listed with its error, left out, every
other plugin working. Its ``print`` goes to stderr (``engine_run_main`` excepted). A lifecycle hook
(``engine_adjust_config``, ``engine_callbacks``, ``engine_model_built``, ``engine_datasets_built``,
``engine_run_finished``, ``engine_run_main``) raising anything but an `engine.EngineError`
stops the command naming plugin, hook and error, and the plugin is recorded broken until
``engine plugins enable NAME``. An ``EngineError`` is the user's mistake: one line, exit 2.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    import argparse
    from pathlib import Path

    from engine._contract.commands import CommandSink
    from engine._contract.declarations import Component, Recipe, Section
    from engine._contract.events import DatasetsBuilt, ModelBuilt, RunCollection, RunFinished

hookspec = pluggy.HookspecMarker("engine")
#: Decorates a plugin's hook implementations (``from engine import hookimpl``).
hookimpl = pluggy.HookimplMarker("engine")


# --------------------------------------------------------------------------- declarations


@hookspec
def engine_models() -> list[Component]:
    """Declare models: targets are classes or functions returning an ``nn.Module``.

    Their parameters, read from signature and docstring (``Args:``), are the ``model.*`` keys; those
    named like a data fact (``num_classes``, ``input_shape``, ``vocab_size`` …) are filled from the
    data when the user leaves them unset, so give them no default.
    """


@hookspec
def engine_losses() -> list[Component]:
    """Declare losses: targets return a callable ``loss(outputs, targets) -> scalar tensor``."""


@hookspec
def engine_optimizers() -> list[Component]:
    """Declare optimizers: targets are factories ``opt(params, **keys) -> torch.optim.Optimizer``.

    ``params`` (parameters or groups) comes from the task; the other parameters are ``optimizer.*``.
    """


@hookspec
def engine_schedulers() -> list[Component]:
    """Declare schedulers: factories ``sched(optimizer, total_steps, max_epochs, **keys)``.

    ``total_steps`` and ``max_epochs`` are supplied when asked for. Return a torch scheduler (stepped
    each epoch) or Lightning's dict (``{"scheduler": s, "interval": "step"}``).
    """


@hookspec
def engine_data_sources() -> list[Component]:
    """Declare data sources: targets build an object with ``facts`` and ``datasets()``.

    ``facts`` is what the data knows (``num_classes``, ``input_shape`` …; list their names in
    ``Component(facts=...)`` so configs check without loading data); ``datasets()`` returns
    ``{"train", "val", "test"}`` map-style datasets of ``(input, target)`` (subclass
    `engine.data.DataSource`). The optional methods (``save_artifacts``, ``load_artifacts``,
    ``load_input``, ``collate_fn`` …) are the protocols of `engine.protocols`. A source may return
    a ``LightningDataModule`` with ``facts`` when it needs full control.
    """


@hookspec
def engine_deploy_targets() -> list[Component]:
    """Declare deployment targets: classes whose instances have ``export(model, example, out_dir) -> Path``,
    ``load(path) -> callable`` and ``tolerance`` (the largest difference to eager outputs that is correct)."""


@hookspec
def engine_tasks() -> list[Component]:
    """Declare tasks: ``LightningModule`` subclasses built around *slots* (``Component(slots=...)``).

    Each slot (``{"model": "model", "optimizer": "optimizer"}``) becomes a config section; the task
    receives built models and losses, and factories for optimizers and schedulers (see
    `engine.tasks.configure_optimizers`). Its other parameters are ``task.*`` keys, facts filled.
    """


@hookspec
def engine_recipes() -> list[Recipe]:
    """Declare recipes: named complete configs (a mapping, or ``"package:path.yaml"``), overridable."""


@hookspec
def engine_config_sections() -> list[Section]:
    """Declare config sections (or keys every slot of a kind accepts): their keys are a dataclass's fields.

    Types, defaults and docs are read from source and checked before any compute; the resolved config
    holds the section with its defaults for your hooks to read. A name already taken is refused.
    """


@hookspec
def engine_pipeline_steps() -> list[Component]:
    """Declare kinds of pipeline step besides runs (``deploy:`` …): targets ``step(out, **keys) -> dict``.

    The stage's keys are the parameters (``${stages.NAME}`` already replaced by run directories);
    ``out`` is the stage's directory; the returned dict (optional ``metrics``, ``primary_metric``) is
    recorded. A torch-free ``check(values, where, config)`` refuses bad keys before the first stage trains
    (``config``: ``{"stages": {name: directory}}``).
    """


# --------------------------------------------------------------------------- the command line


@hookspec
def engine_add_commands(subparsers: CommandSink) -> None:
    """Add commands: ``subparsers.add_parser(name, help=...)`` returns an argparse parser.

    Name the handler lazily, ``parser.set_defaults(handler="module:function")``: it is called with the
    parsed ``argparse.Namespace`` and returns the exit code. ``subparsers.extend("run")`` returns a
    parser whose options join ``engine run``. A name or option already taken is refused.
    """


@hookspec(firstresult=True)
def engine_run_main(args: argparse.Namespace, config: dict[str, Any]) -> int | None:
    """Carry out ``engine run`` yourself when options you added to it are set: return the exit code.

    ``config`` is the composed config, not yet planned. Return None to let the next plugin, and
    finally the core, run it; the first answer wins (``--folds K`` trains K fold runs).
    """


# --------------------------------------------------------------------------- runs


@hookspec
def engine_adjust_config(config: dict[str, Any]) -> None:
    """Adjust the composed config in place before it is planned (every ``engine run``, ``--dry-run`` too).

    Names are qualified; sections the user did not set hold their defaults. Do not import torch; raise
    `engine.ConfigError` for a config that cannot work.
    """


@hookspec
def engine_callbacks(config: dict[str, Any]) -> list[Any]:
    """Return Lightning callbacks and/or loggers for the run's Trainer (``config``: resolved, read-only)."""


@hookspec
def engine_model_built(built: ModelBuilt) -> None:
    """A model slot's object was built: change it, or replace ``built.model`` (LoRA, quantisation).

    Called in every process that builds a run, before the task; ``built.restoring`` is true when the
    run's checkpoint will replace the weights (load none then). ``built.keys`` are the slot's engine keys.
    """


@hookspec
def engine_datasets_built(built: DatasetsBuilt) -> None:
    """A data source's splits were built: replace ``built.splits`` to re-deal them (folds, subsets)."""


@hookspec
def engine_run_finished(run: RunFinished) -> dict[str, Any] | None:
    """A run ended (``run.status``): return entries to add to its ``summary.json`` (rank zero)."""


@hookspec(firstresult=True)
def engine_run_collection(path: Path) -> RunCollection | None:
    """Describe ``path`` when it is a directory of several runs your plugin wrote, else return None."""
