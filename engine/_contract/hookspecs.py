"""The plugin contract: every hook a plugin may implement.

A plugin is a module (or object) with functions decorated by
``engine.hookimpl`` whose names match the specifications below; it is made
known to the engine through an entry point in the ``engine.plugins`` group::

    # pyproject.toml of your distribution
    [project.entry-points."engine.plugins"]
    vision = "engine_vision.plugin"

The entry point's name (``vision``) is the plugin's name and qualifies every
component it declares (``vision.resnet``; recipes ``vision/digits``).

Registration hooks (``engine_models`` … ``engine_recipes``) are called once,
when the registry is first needed (listing, resolving a name, validating a
config). They return *declarations* (:class:`engine.Component`,
:class:`engine.Recipe`) whose targets are ``"module:attr"`` strings: keep the
plugin module itself free of heavy imports (torch, numpy) so that
``engine --help``, listing and validation stay fast. The target is imported only
when a run is built.

**Order.** pluggy calls every hook: the core's implementation first, then each plugin's in
alphabetical order of plugin name (``deploy``, ``gan``, ``nlp`` …), whatever the install order. A
plugin moves its implementation with pluggy's own ``@hookimpl(tryfirst=True)`` / ``trylast=True`` and
may wrap a hook with ``@hookimpl(wrapper=True)``. A later plugin sees what earlier ones did
(``engine_adjust_config``) and loses a name clash with them (a command, a config section).
``ENGINE_TRACE_HOOKS=1`` prints every hook call on stderr: its implementations in call order, each
with its duration.

**Names.** Every hook that receives a configuration receives it with component
names in qualified form (``vision.resnet``, ``core.supervised``), so compare
names with ``==``.

**Failures.** A plugin whose module fails to import (``sys.exit`` included), whose
hooks do not match these specifications, or that raises in a registration hook
(``engine_models`` … ``engine_config_sections``, ``engine_add_commands``) is
*broken*: ``engine plugins list`` shows it with its error, its components and
commands are left out, and every other plugin keeps working. A lifecycle hook
(``engine_adjust_config``, ``engine_callbacks``, ``engine_model_built``,
``engine_datasets_built``, ``engine_run_finished``, ``engine_run_main``) that raises anything but
an :class:`engine.EngineError` stops the command (exit 2, plugin, hook and error named) and the
plugin is recorded broken until it is reinstalled or ``engine plugins enable NAME`` retries it.

The built-in components, commands and config sections of the core are declared
by :mod:`engine._builtins` through these same hooks.
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


# --------------------------------------------------------------------------- components


@hookspec
def engine_models() -> list[Component]:
    """Declare models (``torch.nn.Module`` factories).

    The target is a class or function returning an ``nn.Module``. Its
    parameters, read from its signature and docstring, become the ``model.*``
    config keys. Parameters named like a data fact (``num_classes``,
    ``in_features``, ``input_shape``, ``vocab_size`` …) are filled from the data
    source when the user leaves them unset, so declare them without defaults::

        @hookimpl
        def engine_models():
            return [Component("cnn", "engine_vision.models:SmallCNN", "Small conv net")]

        # engine_vision/models.py
        class SmallCNN(nn.Module):
            def __init__(self, input_shape: tuple[int, int, int], num_classes: int, width: int = 32):
                '''Args:
                    width: channels of the first convolution.'''
    """


@hookspec
def engine_losses() -> list[Component]:
    """Declare losses.

    The target returns a callable ``loss(outputs, targets) -> scalar tensor``
    (usually an ``nn.Module``). The supervised task calls it with the model's
    output and the batch's target.
    """


@hookspec
def engine_optimizers() -> list[Component]:
    """Declare optimizers.

    The target is a factory whose **first parameter is** ``params`` (the
    parameters or parameter groups to optimise, supplied by the task) and whose
    other parameters are the ``optimizer.*`` config keys; it returns a
    ``torch.optim.Optimizer``::

        def lion(params, lr: float = 1e-4, weight_decay: float = 0.0) -> Optimizer: ...
    """


@hookspec
def engine_schedulers() -> list[Component]:
    """Declare learning-rate schedulers.

    The target is a factory taking ``optimizer`` and, if it asks for them,
    ``total_steps`` (optimizer steps the whole run will make) and
    ``max_epochs``, which the task supplies; its other parameters are the
    ``scheduler.*`` config keys. It returns a ``torch.optim.lr_scheduler``
    object (stepped once per epoch) or a Lightning lr-scheduler dict
    (``{"scheduler": s, "interval": "step", "monitor": "val/loss"}``).
    """


@hookspec
def engine_data_sources() -> list[Component]:
    """Declare data sources.

    The target returns an object with

    - ``facts``: a mapping of what the data knows about itself
      (``num_classes``, ``in_features``, ``input_shape``, ``class_names``,
      ``vocab_size``, ``observation_space`` …), and
    - ``datasets()``: a mapping ``{"train": Dataset, "val": Dataset,
      "test": Dataset}`` (``val``/``test`` optional) of map-style
      ``torch.utils.data.Dataset`` yielding ``(input, target)``;

    subclass :class:`engine.data.DataSource` for both. Optionally it has
    ``save_artifacts(run_dir)``, called once the run directory exists, to write
    what later use of the run needs (a tokenizer trained on the data),
    ``load_artifacts(run_dir)``, called when a finished run is reopened
    (``engine.runs.open_run(RUN).datamodule()``) to read them back, and
    ``load_input(path) -> Tensor`` to read one input file for prediction (the
    protocols of :mod:`engine.protocols`). The core wraps it in a
    ``LightningDataModule`` (``data.batch_size``, ``data.num_workers``). A
    source may instead return a ``lightning.LightningDataModule`` with a
    ``facts`` attribute when it needs full control (RL environments do).

    List the facts in the declaration so configs validate without loading data::

        Component("digits", "engine_vision.data:Digits", "sklearn 8x8 digits",
                  facts=("num_classes", "input_shape", "class_names"))
    """


@hookspec
def engine_deploy_targets() -> list[Component]:
    """Declare deployment targets (export formats).

    The target is a class whose constructor parameters are the user's options
    (``opset``, ``quantize`` …) and whose instances provide

    - ``export(model, example_inputs, out_dir) -> Path``: write an artifact for
      the eval-mode ``model`` into ``out_dir`` and return its path;
    - ``load(path) -> callable``: reload the artifact as a callable taking the
      same inputs as the model, used to verify it against eager PyTorch;
    - ``tolerance``: the largest absolute difference to eager outputs that
      still counts as correct (``1e-5`` for exact formats, more for int8)::

        class TorchScript:
            tolerance = 1e-5
            def __init__(self, method: str = "trace"): ...
            def export(self, model, example_inputs, out_dir): ...
            def load(self, path): ...
    """


@hookspec
def engine_tasks() -> list[Component]:
    """Declare tasks: ``LightningModule`` templates that define a training step.

    The target is a ``LightningModule`` subclass. Its *slots* name the
    components it is built from, each becoming a config section; the core
    builds each slot from the registry and passes it in by parameter name
    (``primary_slot`` names the one the run is about; default: the first model slot):

    - ``model`` slots: a built ``nn.Module`` (facts filled in);
    - ``loss`` slots: a built loss;
    - ``optimizer`` / ``scheduler`` slots: a *factory* (``functools.partial``)
      the task calls in ``configure_optimizers`` with the parameters
      (and, for schedulers, the optimizer and ``total_steps``).

    Its other parameters are the ``task.*`` config keys; ones named like data
    facts are filled from the data. The optional methods the core calls on a
    task (``check_data``, ``evaluate_run``, ``primary_metric``) are the protocols
    of :mod:`engine.protocols`. The built-in supervised task::

        Component("supervised", "engine._builtins.supervised:SupervisedTask",
                  "model + loss + optimizer, torchmetrics metrics",
                  slots={"model": "model", "loss": "loss",
                         "optimizer": "optimizer", "scheduler": "scheduler"},
                  defaults={"optimizer": "adamw"}, required_slots=("model",))
    """


@hookspec
def engine_recipes() -> list[Recipe]:
    """Declare recipes: named, complete run configurations.

    ``engine run vision/digits trainer.max_epochs=3`` starts from the recipe and
    applies the user's files and overrides on top. A recipe is a mapping or a
    YAML file shipped inside the package::

        Recipe("digits", "engine_vision:recipes/digits.yaml", "ResNet on digits, >=99% test accuracy")
    """


@hookspec
def engine_config_sections() -> list[Section]:
    """Declare config sections (or keys every slot of one kind accepts).

    A :class:`engine.Section` names a dataclass whose fields are the section's
    keys: types, defaults and ``Args:`` docs are read from its source, like a
    component's parameters, and checked before any compute. The resolved config
    then holds the section with its defaults, for your ``engine_callbacks`` to
    read. Keep the dataclass's module free of torch (``check`` too)::

        @hookimpl
        def engine_config_sections():
            return [Section("notify", "my_sections:Notify", "Print a line every N epochs", optional=True)]

        # my_sections.py
        @dataclass
        class Notify:
            '''Args:
                every: epochs between two lines.'''
            every: int = 1

    A name the core or an earlier plugin already uses is refused (the plugin is
    marked broken, both owners named). The core declares ``checkpoint``,
    ``early_stopping``, ``prune``, ``run`` and the model/optimizer slot keys
    (``init_from``, ``freeze``, ``param_groups`` …) the same way.
    """


# --------------------------------------------------------------------------- lifecycle


@hookspec
def engine_adjust_config(config: dict[str, Any]) -> None:
    """Adjust the composed configuration before it is validated and built.

    ``config`` is the composed configuration as plain, mutable data (recipe,
    files and overrides applied; every component name already qualified:
    ``config["data"]["name"] == "vision.digits"``, ``config["task"]["name"] ==
    "core.supervised"``); change it in place. Sections the user did not set hold
    their defaults; slots the user left out are absent (the task's defaults apply
    later). Called for every ``engine run`` including ``--dry-run``, core first,
    then plugins by name; do not import torch here. Raise
    :class:`engine.ConfigError` for a config that cannot work (a task that does not
    fit the chosen data, say): the user sees its message, exit code 2, and the
    plugin is not marked broken. Any other exception stops the run too, naming
    your plugin, and marks it broken.
    """


@hookspec
def engine_callbacks(config: dict[str, Any]) -> list[Any]:
    """Return Lightning callbacks and/or loggers to add to the Trainer.

    Called when a run is built (torch is imported by then). Return instances of
    ``lightning.pytorch.Callback`` or ``lightning.pytorch.loggers.Logger``; the
    core sorts them into the Trainer's ``callbacks`` and ``logger`` arguments.
    ``config`` is the resolved configuration (qualified names, every section's
    defaults; read it, do not change it). An exception stops the run before its
    run directory is created, naming your plugin.
    """


@hookspec
def engine_pipeline_steps() -> list[Component]:
    """Declare kinds of pipeline step besides runs (``engine pipeline``: ``deploy:`` …).

    A step of a pipeline file is ``NAME: {KIND: {key: value, ...}}``; the keys are the parameters
    of the target, a function ``step(out, **keys) -> dict`` (``out``: the step's directory, given
    by the pipeline; ``${stages.NAME}`` references in the keys are already replaced by run
    directories). It returns what the pipeline records: optional ``metrics`` and
    ``primary_metric`` (``{"name", "value"}``) and anything else. Declare a torch-free ``check``
    to refuse bad keys before the first stage trains::

        Component("deploy", "engine_deploy.steps:deploy_step", "Export a run and verify it",
                  check="engine_deploy.steps:check_deploy_step")
    """


# --------------------------------------------------------------------------- the command line


@hookspec
def engine_add_commands(subparsers: CommandSink) -> None:
    """Add subcommands to the ``engine`` command, or options to one (:class:`engine.CommandSink`).

    Add a parser and name its handler lazily, as ``"module:function"``; the handler is imported
    only when the command runs and is called with the parsed ``argparse.Namespace``; its return
    value is the exit code::

        @hookimpl
        def engine_add_commands(subparsers):
            p = subparsers.add_parser("generate", help="sample text from a trained LM")
            p.add_argument("run")
            p.set_defaults(handler="engine_nlp.cli:generate")

    ``subparsers.extend("run")`` returns a parser whose options join ``engine run`` (act on them
    in ``engine_run_main``). Raise :class:`engine.EngineError` for user mistakes: the CLI prints it
    on one line and exits 2. The core's own commands (``run``, ``plugins``, ``components``) come
    in through this hook first; a command name (or option) that the core or an earlier plugin
    already has is refused and the plugin is marked broken (both owners named), everything
    else works.
    """


@hookspec(firstresult=True)
def engine_run_main(args: argparse.Namespace, config: dict[str, Any]) -> int | None:
    """Carry out ``engine run`` yourself when options your plugin added to it are set.

    Called once the command's config is composed (``config``: as :func:`engine.compose` returns it),
    before it is planned; ``args`` holds every option of ``engine run``. Return the exit code to
    take over (cross-validation trains K fold runs for ``--folds K``), or None to let the next
    plugin, and finally the core, run it. The first non-None answer wins::

        @hookimpl
        def engine_run_main(args, config):
            if args.folds is None:
                return None
            from my_plugin.folds import run_folds
            return run_folds(config, args.folds)
    """


# --------------------------------------------------------------------------- runs


@hookspec
def engine_model_built(built: ModelBuilt) -> None:
    """A model slot's object has been built: change it in place, or replace ``built.model``.

    Called for each model slot of the task, before the task is built around them, in every
    process that builds a run: training, resuming, reopening a finished run
    (``built.restoring``: its checkpoint will replace the weights, so load none from elsewhere).
    Transfer learning loads weights here (``model.init_from``) and freezes parameters; a LoRA
    plugin would replace ``built.model`` with the wrapped model::

        @hookimpl
        def engine_model_built(built):
            patterns = (built.config.get(built.slot) or {}).get("freeze") or []
            for name, p in built.model.named_parameters():
                if any(fnmatch(name, pat) for pat in patterns):
                    p.requires_grad_(False)
    """


@hookspec
def engine_datasets_built(built: DatasetsBuilt) -> None:
    """A data source's splits have been built: replace ``built.splits`` to re-deal them.

    Called once per run (and per reopened run), when the core's data module first needs its
    splits; not for sources that build their own ``LightningDataModule``. Cross-validation deals
    the training and validation samples into folds here::

        @hookimpl
        def engine_datasets_built(built):
            if built.config.get("holdout") is not None:
                built.splits = {**built.splits, "val": built.splits["test"]}
    """


@hookspec
def engine_run_finished(run: RunFinished) -> dict[str, Any] | None:
    """A run has ended (completed, failed or interrupted): return entries to add to ``summary.json``.

    Called on rank zero, after training and testing, before the summary is written. Return a
    mapping of JSON data (merged into the summary) or None::

        @hookimpl
        def engine_run_finished(run):
            if run.status == "completed":
                return {"notes": f"{len(run.summary['metrics'])} metrics"}
    """


@hookspec(firstresult=True)
def engine_run_collection(path: Path) -> RunCollection | None:
    """Describe ``path`` if it is a directory of several runs your plugin wrote, else return None.

    A sweep, a cross-validation or a pipeline directory holds run directories and files of its
    own; commands that read runs (``engine runs list``, ``runs compare``, ``report``) ask this hook
    and list, expand or summarise the collection without knowing its files. The first plugin
    that recognises the directory answers::

        @hookimpl
        def engine_run_collection(path):
            if not (path / "study.json").is_file():
                return None
            trials = sorted(p for p in path.glob("trial-*") if (p / "config.yaml").is_file())
            return RunCollection("study", path, members=[(t.name, t) for t in trials])
    """
