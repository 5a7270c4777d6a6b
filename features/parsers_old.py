"""The core's commands, added through ``engine_add_commands`` like any plugin's (see :mod:`engine._builtins`).

Only the parsers live here (argparse and nothing else, so ``engine --help`` stays fast); each
handler is named lazily as ``"module:function"`` and imported when its command runs.
"""

from __future__ import annotations

import argparse
from typing import Any

_RAW = argparse.RawDescriptionHelpFormatter

RUN_EPILOG = """\
overrides:
  model=NAME            choose a component (shorthand for model.name=NAME)
  model.hidden=[64,64]  set a parameter (see `engine components show NAME`)
  trainer.max_epochs=5  any lightning.Trainer argument
  data.batch_size=128   loader: batch_size, num_workers, pin_memory
  checkpoint.monitor=val/accuracy checkpoint.mode=max
  early_stopping.patience=5   switch on early stopping
  prune.amount=0.5      prune 50% of the weights during training (see docs/techniques.md)
  model.init_from=RUN model.freeze=[features.*]   fine-tune from another run
  task=distill task.teacher=RUN   distil a trained run into the model
  seed=1  run.dir=runs  run.name=my-run
  (every config section: `engine components list --kind section`)

cross-validation:
  engine run core/mlp-synthetic --folds 5        5 fold runs in runs/<name>/fold-k, folds.json
  engine run model=mlp data=csv data.path=t.csv --folds 5 --group-by patient
"""

EVALUATE_EPILOG = """\
examples:
  engine evaluate runs/a
  engine evaluate runs/a runs/b --split val
  engine evaluate runs/cartpole episodes=20 seed=3     options of the task's own evaluation
  engine evaluate runs/seed0 runs/seed1 runs/seed2 --ensemble
"""

REPORT_EPILOG = """\
examples:
  engine report runs/digits                         -> runs/digits/report/
  engine report runs/scratch runs/finetuned --out cmp  compare two runs on one chart
  engine report sweeps/lr                           a sweep: the metric against each parameter, best trial's curves
"""


PIPELINE_EPILOG = """\
a pipeline file (see docs/pipelines.md):
  stages:
    pre:                                     a run: recipe, files, config sections, overrides (all optional)
      recipe: core/mlp-synthetic
      overrides: [trainer.max_epochs=4]
    fine:
      recipe: core/mlp-synthetic
      model: {init_from: "${stages.pre}"}    ${stages.NAME}: an earlier stage's run directory
      optimizer: {lr: 0.0003}
    export:
      deploy: {run: "${stages.fine}", target: onnx}   a deploy step (needs engine-deploy)

examples:
  engine pipeline ft.yaml --dry-run            check every stage, say what would train, skip or resume
  engine pipeline ft.yaml                      run into pipelines/ft/ (pipeline.json, stages/NAME/)
  engine pipeline ft.yaml                      again: completed stages with the same config are skipped,
                                               an interrupted one resumes, a changed one reruns with the
                                               stages after it (its old run kept as NAME.old-<time>)
  engine pipeline ft.yaml --dir pipelines/ft2 -q
  engine runs list --dir pipelines             every pipeline's stages, grouped
"""


def add_commands(sub: Any) -> None:
    """Add ``run``, ``pipeline``, ``plugins``, ``components``, ``runs``, ``evaluate``, ``report`` and ``new``."""
    _run(sub)
    _pipeline(sub)
    _plugins(sub)
    _components(sub)
    _runs(sub)
    _evaluate(sub)
    _report(sub)
    _new(sub)


def verbosity(parser: argparse.ArgumentParser) -> None:
    """``--quiet`` / ``--verbose`` of a long command (see :mod:`engine._run.logs`)."""
    loud = parser.add_mutually_exclusive_group()
    loud.add_argument("--quiet", "-q", action="store_true", help="no epoch lines or progress bar; the results only")
    loud.add_argument("--verbose", "-v", action="store_true", help="everything Lightning prints, progress bar included")


def group(parser: argparse.ArgumentParser, dest: str = "subcommand") -> Any:
    """Sub-commands of a command group; the group alone shows its help (exit 2)."""
    parser.set_defaults(handler="engine._cli.inspect:group_help", help_parser=parser)
    return parser.add_subparsers(dest=dest, metavar="SUBCOMMAND")


def _run(sub: Any) -> None:
    run = sub.add_parser(
        "run",
        help="compose a config from names and train it",
        description="Compose a run: [RECIPE] then -c files then key=value overrides (later wins), "
        "validate it, train with Lightning, test, and write a run directory.",
        epilog=RUN_EPILOG,
        formatter_class=_RAW,
    )
    run.add_argument("items", nargs="*", metavar="RECIPE|KEY=VALUE")
    run.add_argument("-c", "--config", action="append", metavar="FILE", help="YAML config file (repeatable)")
    run.add_argument("--dry-run", action="store_true", help="validate and print the resolved config; build nothing")
    run.add_argument("--resume", metavar="RUN", help="continue the run in this directory from its last checkpoint")
    verbosity(run)
    run.add_argument(
        "--folds",
        type=int,
        metavar="K",
        help="K-fold cross-validation: K fold runs in one parent directory, test metrics as mean ± std",
    )
    run.add_argument(
        "--group-by", metavar="COLUMN", help="with --folds: keep each group of COLUMN in one fold (default: by class)"
    )
    run.set_defaults(handler="engine._cli.run:cmd_run")


def _pipeline(sub: Any) -> None:
    p = sub.add_parser(
        "pipeline",
        help="run the stages of a pipeline file in order (pretrain, fine-tune, distil, deploy …)",
        description="Run a pipeline file's named stages in order into one directory: each stage an ordinary "
        "run (composed like `engine run`: recipe, files, config keys, overrides) or a deploy step, a later "
        "stage using an earlier one's run directory as ${stages.NAME}. Every stage is validated before the "
        "first trains. A rerun skips completed stages whose resolved config is the same, resumes an "
        "interrupted one, and reruns a changed stage and every stage after it.",
        epilog=PIPELINE_EPILOG,
        formatter_class=_RAW,
    )
    p.add_argument("file", metavar="FILE", help="the pipeline YAML file")
    p.add_argument("--dir", metavar="DIR", help="the pipeline directory (default: pipelines/<FILE stem>)")
    p.add_argument("--dry-run", action="store_true", help="validate every stage and say what would run; build nothing")
    verbosity(p)
    p.set_defaults(handler="engine._builtins.commands.pipeline:cmd_pipeline")


def _plugins(sub: Any) -> None:
    psub = group(sub.add_parser("plugins", help="list, inspect, install, enable and disable plugins"))
    psub.add_parser("list", help="every plugin: distribution, version, status, hooks").set_defaults(
        handler="engine._cli.inspect:cmd_plugins_list"
    )
    p = psub.add_parser("info", help="one plugin: its hooks, components, and problems with them")
    p.add_argument("name")
    p.add_argument(
        "--import",
        dest="import_",
        action="store_true",
        help="import every target (slower; catches errors inside target modules too)",
    )
    p.set_defaults(handler="engine._cli.inspect:cmd_plugins_info")
    p = psub.add_parser("install", help="pip-install plugin distributions here, then list what they contribute")
    p.add_argument("spec", nargs="*", help="anything pip install accepts: names, paths, -e DIR, --no-deps, …")
    p.set_defaults(handler="engine._cli.manage:cmd_install")
    p = psub.add_parser("uninstall", help="pip-uninstall the distribution providing a plugin")
    p.add_argument("name", help="plugin name or distribution name (see `engine plugins list`)")
    p.set_defaults(handler="engine._cli.manage:cmd_uninstall")
    p = psub.add_parser("disable", help="turn a plugin off for every command (saved under ENGINE_HOME)")
    p.add_argument("name")
    p.set_defaults(handler="engine._cli.manage:cmd_disable")
    p = psub.add_parser("enable", help="turn a disabled plugin back on (and retry one recorded broken)")
    p.add_argument("name")
    p.set_defaults(handler="engine._cli.manage:cmd_enable")


def _components(sub: Any) -> None:
    csub = group(sub.add_parser("components", help="query the registry of models, data sources, recipes, …"))
    p = csub.add_parser("list", help="components, filtered by kind and glob pattern")
    p.add_argument("pattern", nargs="?", help="glob on the (qualified) name, e.g. 'res*'")
    p.add_argument("--kind", "-k", help="task, model, loss, optimizer, scheduler, data, deploy, recipe or section")
    p.set_defaults(handler="engine._cli.inspect:cmd_components_list")
    p = csub.add_parser("show", help="one component: target, facts, parameters with types and defaults")
    p.add_argument("name", help="qualified (vision.resnet) or unambiguous short name")
    p.add_argument("--kind", "-k", help="only look among this kind")
    p.add_argument(
        "--import",
        dest="import_",
        action="store_true",
        help="import the target when its source cannot be read statically",
    )
    p.set_defaults(handler="engine._cli.inspect:cmd_components_show")


def _runs(sub: Any) -> None:
    rsub = group(sub.add_parser("runs", help="list run directories"))
    p = rsub.add_parser("list", help="runs, oldest first (by start): status, the task's primary metric, wall time")
    p.add_argument(
        "--dir",
        default="runs",
        help="directory holding runs (default: runs); pipeline directories in it, or it, list their stages",
    )
    p.set_defaults(handler="engine._cli.run:cmd_runs_list")
    p = rsub.add_parser(
        "compare",
        help="runs side by side: the settings that differ, the primary metric, test metrics, wall time",
        description="One table of runs, cross-validations (their fold means) or every trial of a sweep "
        "directory: the config keys that differ as columns, the task's primary metric first (sorted by it), "
        "the other test metrics and the wall time.",
        epilog="examples:\n  engine runs compare runs/a runs/b runs/c\n  engine runs compare sweeps/lr\n"
        "  engine runs compare runs/cv-mlp runs/cv-resnet      cross-validations (fold means)",
        formatter_class=_RAW,
    )
    p.add_argument("runs", nargs="+", metavar="RUN|SWEEP_DIR", help="run, cross-validation or sweep directories")
    p.add_argument("--max-metrics", type=int, default=4, metavar="N", help="other metrics shown (default 4)")
    p.set_defaults(handler="engine._builtins.commands.compare:cmd_runs_compare")


def _evaluate(sub: Any) -> None:
    p = sub.add_parser(
        "evaluate",
        help="evaluate trained runs again on their own data (test split, or the task's own evaluation)",
        description="Load each run's best checkpoint and evaluate it on the run's data: Lightning's test "
        "loop, or the task's own evaluation when it has one (an RL task plays episodes on fresh seeds); "
        "KEY=VALUE items set that evaluation's options (see `engine components show TASK`). With "
        "--ensemble, the runs' probabilities are averaged into one ensemble prediction.",
        epilog=EVALUATE_EPILOG,
        formatter_class=_RAW,
    )
    p.add_argument("runs", nargs="+", metavar="RUN|KEY=VALUE", help="run directories, then evaluation options")
    p.add_argument("--split", choices=("test", "val"), default="test", help="split to evaluate (default: test)")
    p.add_argument("--checkpoint", choices=("best", "last"), default="best", help="which checkpoint (default: best)")
    verbosity(p)
    p.add_argument(
        "--ensemble",
        action="store_true",
        help="average the runs' predicted probabilities (outputs for regression) on their shared split and report "
        "each member and the ensemble (runs must share data and split: vary only the seed)",
    )
    p.set_defaults(handler="engine.evaluate:cmd_evaluate")


def _report(sub: Any) -> None:
    p = sub.add_parser(
        "report",
        help="training curves (PNG) and a Markdown summary of one or more runs, compared on one chart",
        description="Read each run's metrics CSV, config and summary; draw loss, metrics and learning rate "
        "against the step (every run on the same axes: train dashed, validation solid) into OUT/curves.png, "
        "and write OUT/report.md: each run's final metrics, steps and wall time, techniques used (pruning, "
        "init_from, freeze), and the config keys that differ between the runs. Needs matplotlib.",
        epilog=REPORT_EPILOG,
        formatter_class=_RAW,
    )
    p.add_argument("runs", nargs="+", metavar="RUN", help="run directories")
    p.add_argument(
        "--out", metavar="DIR", help="output directory (default: RUN/report for one run, reports/<time> for several)"
    )
    p.set_defaults(handler="engine._builtins.commands.report:cmd_report")


def _new(sub: Any) -> None:
    nsub = group(sub.add_parser("new", help="scaffold a new plugin package"))
    p = nsub.add_parser(
        "plugin",
        help="a pip-installable plugin: a model, a data source, a recipe, tests using the conformance kit",
    )
    p.add_argument(
        "name", help="plugin name: lower-case letters, digits, _ or - (acme-widgets: package engine_acme_widgets)"
    )
    p.add_argument("--dir", help="where to write it (default: ./engine-<name>)")
    p.set_defaults(handler="engine.scaffold:cmd_new_plugin")
