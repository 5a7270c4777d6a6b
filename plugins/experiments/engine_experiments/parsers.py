"""The plugin's commands and its options of ``engine run`` (argparse only, so ``engine --help`` stays fast).

Each handler is named lazily as ``"module:function"`` and imported when its command runs.
"""

from __future__ import annotations

import argparse

from engine import CommandSink
from engine.console import add_verbosity_options

_RAW = argparse.RawDescriptionHelpFormatter

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
      deploy: {run: "${stages.fine}", target: onnx}   a step of a kind a plugin declares (deploy: engine-deploy)

examples:
  engine pipeline ft.yaml --dry-run            check every stage, say what would train, skip or resume
  engine pipeline ft.yaml                      run into pipelines/ft/ (pipeline.json, stages/NAME/)
  engine pipeline ft.yaml                      again: completed stages with the same config are skipped,
                                               an interrupted one resumes, a changed one reruns with the
                                               stages after it (its old run kept as NAME.old-<time>)
  engine pipeline ft.yaml --dir pipelines/ft2 -q
  engine runs list --dir pipelines             every pipeline's stages, grouped
"""


def add_commands(sub: CommandSink) -> None:
    """``run --folds/--group-by``, ``pipeline``, ``runs list|compare``, ``evaluate`` and ``report``."""
    _run(sub)
    _pipeline(sub)
    _runs(sub)
    _evaluate(sub)
    _report(sub)


def _run(sub: CommandSink) -> None:
    run = sub.extend("run")
    run.add_argument(
        "--folds",
        type=int,
        metavar="K",
        help="K-fold cross-validation: K fold runs in one parent directory, test metrics as mean ± std",
    )
    run.add_argument(
        "--group-by", metavar="COLUMN", help="with --folds: keep each group of COLUMN in one fold (default: by class)"
    )


def _pipeline(sub: CommandSink) -> None:
    p = sub.add_parser(
        "pipeline",
        help="run the stages of a pipeline file in order (pretrain, fine-tune, distil, deploy …)",
        description="Run a pipeline file's named stages in order into one directory: each stage an ordinary "
        "run (composed like `engine run`: recipe, files, config keys, overrides) or a step of a kind a plugin "
        "declares (deploy …), a later stage using an earlier one's run directory as ${stages.NAME}. Every stage "
        "is validated before the first trains. A rerun skips completed stages whose resolved config is the "
        "same, resumes an interrupted one, and reruns a changed stage and every stage after it.",
        epilog=PIPELINE_EPILOG,
        formatter_class=_RAW,
    )
    p.add_argument("file", metavar="FILE", help="the pipeline YAML file")
    p.add_argument("--dir", metavar="DIR", help="the pipeline directory (default: pipelines/<FILE stem>)")
    p.add_argument("--dry-run", action="store_true", help="validate every stage and say what would run; build nothing")
    add_verbosity_options(p)
    p.set_defaults(handler="engine_experiments.pipeline_cli:cmd_pipeline")


def _runs(sub: CommandSink) -> None:
    rsub = sub.add_parser("runs", help="list run directories").add_subparsers(dest="subcommand", metavar="SUBCOMMAND")
    p = rsub.add_parser("list", help="runs, oldest first (by start): status, the task's primary metric, wall time")
    p.add_argument(
        "--dir",
        help="directory holding runs (default: $ENGINE_RUNS_DIR, else runs, with the sweeps in sweeps/ and "
        "pipelines in pipelines/); pipeline directories in it, or it, list their stages",
    )
    p.add_argument("--json", action="store_true", help="print the runs as JSON (a list; see docs/cli.md)")
    p.set_defaults(handler="engine_experiments.runs_list:cmd_runs_list")
    p = rsub.add_parser(
        "compare",
        help="runs side by side: the settings that differ, the primary metric, test metrics, wall time",
        description="One table of runs, cross-validations (their fold means) or every trial of a sweep "
        "directory: the config keys that differ as columns, the task's primary metric first (sorted by it; "
        "runs without it last), the other test metrics and the wall time. A table wider than the terminal "
        "is turned: runs as columns, keys as rows.",
        epilog="examples:\n  engine runs compare runs/a runs/b runs/c\n  engine runs compare sweeps/lr\n"
        "  engine runs compare runs/cv-mlp runs/cv-resnet      cross-validations (fold means)",
        formatter_class=_RAW,
    )
    p.add_argument("runs", nargs="+", metavar="RUN|SWEEP_DIR", help="run, cross-validation or sweep directories")
    p.add_argument("--max-metrics", type=int, default=4, metavar="N", help="other metrics shown (default 4)")
    p.add_argument("--all", action="store_true", help="every config key and metric (runs as columns)")
    p.add_argument("--json", action="store_true", help="print the comparison as JSON (every metric; docs/cli.md)")
    p.set_defaults(handler="engine_experiments.compare:cmd_runs_compare")


def _evaluate(sub: CommandSink) -> None:
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
    p.add_argument("--json", action="store_true", help="print the metrics as JSON (docs/cli.md)")
    p.add_argument("--split", choices=("test", "val"), default="test", help="split to evaluate (default: test)")
    p.add_argument("--checkpoint", choices=("best", "last"), default="best", help="which checkpoint (default: best)")
    add_verbosity_options(p)
    p.add_argument(
        "--ensemble",
        action="store_true",
        help="average the runs' predicted probabilities (outputs for regression) on their shared split and report "
        "each member and the ensemble (runs must share data and split: vary only the seed)",
    )
    p.set_defaults(handler="engine_experiments.evaluate:cmd_evaluate")


def _report(sub: CommandSink) -> None:
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
    p.set_defaults(handler="engine_experiments.report_cli:cmd_report")
