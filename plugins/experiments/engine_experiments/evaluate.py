"""``engine evaluate RUN [RUN…]``: measure trained runs again, on their own data.

For each run the best checkpoint is loaded into the run's task and the run's
data source is rebuilt from its config (same seed, same split). A task may
define how it is evaluated (the `EvaluatesRun` protocol);
its parameters after ``datamodule`` are the options ``engine evaluate RUN KEY=VALUE``
sets, checked against their annotations (`engine.check_arguments`)::

    class PPO(L.LightningModule):
        def evaluate_run(self, datamodule, episodes: int = 100, seed: int = 12345) -> dict[str, float]:
            ...  # e.g. run the greedy policy for `episodes` fresh episodes

otherwise Lightning's test (or validation) loop runs and its logged metrics are
reported.

``engine evaluate RUN1 RUN2 RUN3 --ensemble`` averages the runs' predicted
probabilities (outputs, for regression) on their shared test split and reports
each member beside the ensemble (`ensemble`), scored by the problem type's own
metrics (`engine.tasks.score`, the table every supervised run is scored by).
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import engine
from engine import ConfigError, EngineError
from engine.protocols import EvaluatesRun, HasSplits, implements

#: The ``data`` keys that say how a run loads its data, not which samples it holds.
LOADER_KEYS = ("batch_size", "num_workers", "pin_memory")


def _has_split(datamodule: Any, split: str) -> bool:
    return datamodule.has_split(split) if implements(datamodule, HasSplits) else True


def _trainer() -> Any:
    import lightning as L

    warnings.filterwarnings("ignore", message=".*does not have many workers.*")
    warnings.filterwarnings("ignore", message=".*LeafSpec.*")
    logging.getLogger("lightning.pytorch.utilities.rank_zero").setLevel(logging.WARNING)  # no device banner
    return L.Trainer(
        accelerator="cpu",
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )


def evaluation_options(task: Any, options: dict[str, Any]) -> dict[str, Any]:
    """``options`` checked against the task's ``evaluate_run`` parameters (after ``datamodule``)."""
    if not implements(task, EvaluatesRun):
        if options:
            raise ConfigError(
                f"the task {type(task).__name__} has no evaluation options (got {', '.join(options)})",
                hint="it is evaluated with Lightning's test loop; see --split and --checkpoint",
            )
        return {}
    return engine.check_arguments(task.evaluate_run, options, "evaluate", skip=1)


def evaluate(path: str, split: str = "test", which: str = "best", **options: Any) -> dict[str, Any]:
    """Metrics of the run at ``path`` (see the module docstring); ``options`` go to the task's own evaluation."""
    run = engine.open_run(path)
    run.checkpoint(which)  # a clear message before any building when there is none
    datamodule = run.datamodule()
    task = run.task(which, facts=dict(datamodule.facts))
    checked = evaluation_options(task, options)
    if implements(task, EvaluatesRun):
        return dict(task.evaluate_run(datamodule, **checked))
    if not _has_split(datamodule, split):
        raise EngineError(f"run {run.path} has no '{split}' split to evaluate", hint="choose another with --split")
    trainer = _trainer()
    loop = trainer.test if split == "test" else trainer.validate
    results = loop(task, datamodule=datamodule, verbose=False)
    return dict(results[0]) if results else {}


def predictions(path: str, split: str = "test", which: str = "best") -> tuple[Any, Any, dict[str, Any], Any, str]:
    """``(probabilities, targets, facts, run, inputs digest)`` of run ``path`` on ``split``.

    Outputs come from the task's ``predict_step`` (the supervised task returns probabilities);
    outputs that are not probabilities are made ones (a softmax for classes, a sigmoid for labels).
    The digest identifies the inputs evaluated, so runs can be shown to share their split.
    """
    import torch

    run = engine.open_run(path)
    run.checkpoint(which)
    datamodule = run.datamodule()
    facts = dict(datamodule.facts)
    task = run.task(which, facts=facts)
    if not _has_split(datamodule, split):
        raise EngineError(f"run {run.path} has no '{split}' split to evaluate", hint="choose another with --split")
    datamodule.setup("test" if split == "test" else "validate")
    loader = datamodule.test_dataloader() if split == "test" else datamodule.val_dataloader()
    digest = hashlib.sha256()
    batches = []
    for x, y in loader:
        for tensor in _tensors((x, y)):
            digest.update(tensor.detach().contiguous().cpu().numpy().tobytes())
        batches.append(y)
    targets = torch.cat(batches)
    try:
        outputs = torch.cat([o.float() for o in _trainer().predict(task, dataloaders=loader)])
    except Exception as exc:
        raise EngineError(
            f"run {run.path}: its task ({type(task).__name__}) cannot predict on its data: {type(exc).__name__}: {exc}",
            hint="ensembles need tasks whose predict_step returns probabilities or outputs (supervised, distill)",
        ) from exc
    problem = str(facts.get("problem") or run.config.get("task", {}).get("problem") or "classification")
    facts["problem"] = problem
    return _probabilities(outputs, problem), targets, facts, run, digest.hexdigest()


def _probabilities(outputs: Any, problem: str) -> Any:
    """Outputs as probabilities when they are not already (a task returning logits)."""
    import torch

    from engine.tasks import to_probabilities

    if problem == "classification":
        sums = outputs.sum(-1)
        if (outputs < 0).any() or not torch.allclose(sums, torch.ones_like(sums), atol=1e-3):
            return to_probabilities(outputs, problem)
    elif problem == "multilabel" and ((outputs < 0).any() or (outputs > 1).any()):
        return to_probabilities(outputs, problem)
    return outputs


def _tensors(obj: Any) -> Iterator[Any]:
    """Every tensor in a (nested) batch."""
    if isinstance(obj, (list, tuple)):
        for item in obj:
            yield from _tensors(item)
    else:
        import torch

        if isinstance(obj, torch.Tensor):
            yield obj


def scores(probabilities: Any, targets: Any, problem: str) -> dict[str, float]:
    """The problem type's metrics of ``probabilities`` (outputs, for regression) against ``targets``;
    the negative log-likelihood too for classes."""
    from engine.tasks import score

    out = score(probabilities, targets, problem, logits=False)
    if problem == "classification":
        import torch

        picked = probabilities.clamp_min(1e-12).gather(1, targets.long().view(-1, 1))
        out["nll"] = float(-torch.log(picked).mean())
    return out


def ensemble(paths: list[str], split: str = "test", which: str = "best") -> dict[str, dict[str, float]]:
    """Each run's metrics and the ensemble's (mean of probabilities, or of outputs) on their shared split.

    The runs must evaluate the same samples: the same data source and the same inputs and targets
    (however they were loaded or augmented in training). Returns ``{run name: metrics, ...,
    "ensemble": metrics}``.
    """
    return _ensemble(paths, split, which)[0]


def _ensemble(paths: list[str], split: str, which: str) -> tuple[dict[str, dict[str, float]], str]:
    """`ensemble`'s result and the runs' problem type."""
    if len(paths) < 2:
        raise EngineError("an ensemble needs at least two runs", hint="engine evaluate RUN1 RUN2 [RUN3 ...] --ensemble")
    import torch

    members = [predictions(p, split, which) for p in paths]
    first_out, first_targets, first_facts, first_run, first_digest = members[0]
    problem = first_facts["problem"]
    source0 = first_run.config.get("data", {}).get("name")
    for out, _targets, facts, run, digest in members[1:]:
        source = run.config.get("data", {}).get("name")
        if source != source0 or digest != first_digest:
            data0, data = first_run.config.get("data", {}), run.config.get("data", {})
            differs = sorted(k for k in {*data0, *data} - set(LOADER_KEYS) if data0.get(k) != data.get(k))
            raise EngineError(
                f"runs {first_run.path} and {run.path} do not share their {split} split (other samples"
                + (f"; data settings differ: {', '.join(differs)})" if differs else ")"),
                hint="ensemble runs trained on the same data with the same data.seed (vary the top-level seed only)",
            )
        if facts["problem"] != problem or out.shape != first_out.shape:
            raise EngineError(
                f"runs {first_run.path} and {run.path} predict different things "
                f"({problem} {list(first_out.shape[1:])} vs {facts['problem']} {list(out.shape[1:])})"
            )
        if facts.get("class_names") != first_facts.get("class_names"):
            raise EngineError(f"runs {first_run.path} and {run.path} have different class names")
    result: dict[str, dict[str, float]] = {}
    for out, targets, _, run, _ in members:
        name = run.path.name
        while name in result:
            name += "'"
        result[name] = scores(out, targets, problem)
    mean = torch.stack([m[0] for m in members]).mean(0)
    result["ensemble"] = scores(mean, first_targets, problem)
    return result, problem


def _split_items(items: list[str]) -> tuple[list[str], dict[str, Any]]:
    """``RUN… KEY=VALUE…`` -> run directories and evaluation options (values parsed like overrides)."""
    runs, options = [], {}
    for item in items:
        if "=" in item and not Path(item).is_dir():
            keys, value = engine.parse_override(item)
            options[".".join(keys)] = value
        else:
            runs.append(item)
    if not runs:
        raise EngineError("no run directory given", hint="engine evaluate RUN [RUN...] [KEY=VALUE...]")
    return runs, options


def incomplete(path: str) -> str | None:
    """``interrupted after 2 of 5 epochs`` for a run that did not finish (its best checkpoint so far is used)."""
    from engine.runs import find_run, read_config, read_json, status

    try:
        summary = read_json(find_run(path), "summary.json")  # a path, or a name as `runs list` prints it
    except EngineError:
        return None  # open_run says what is wrong with the directory
    state = status(summary)
    if state == "completed":
        return None
    figures = {**summary, **(summary.get("last_attempt") or {})}
    epochs = figures.get("epoch", figures.get("epochs"))
    try:
        total = (read_config(find_run(path)).get("trainer") or {}).get("max_epochs")
    except EngineError:
        total = None
    done = f" after {epochs} of {total} epochs" if isinstance(epochs, int) and isinstance(total, int) else ""
    return f"{state}{done}"


def _warn_incomplete(runs: list[str]) -> dict[str, str]:
    """One line on stderr per run that did not finish; their states (for the table's ``status`` row)."""
    import sys

    states = {}
    for path in runs:
        state = incomplete(path)
        if state is not None:
            states[path] = state
            print(f"warning: run {path} is incomplete ({state}): evaluating its checkpoint so far", file=sys.stderr)
    return states


def cmd_evaluate(args: argparse.Namespace) -> int:
    from engine.console import Console, Table, format_metric

    runs, options = _split_items(list(args.runs))
    console = Console()
    states = _warn_incomplete(runs)
    if args.ensemble:
        if options:
            raise EngineError(f"--ensemble takes no evaluation options (got {', '.join(options)})")
        result, problem = _ensemble(runs, split=args.split, which=args.checkpoint)
        if args.json:
            members = {k: v for k, v in result.items() if k != "ensemble"}
            return _emit(
                {"split": args.split, "checkpoint": args.checkpoint, "runs": members, "ensemble": result["ensemble"]}
            )
        table = Table("metric", *result)
        if states:
            table.add_row("status", *(states.get(p, "completed") for p in runs), "-")
        for key in next(iter(result.values())):
            table.add_row(f"{args.split}/{key}", *(format_metric(m[key]) for m in result.values()))
        console.print(table)
        console.print(_ensemble_line(result, problem))
        return 0
    columns = {path: evaluate(path, split=args.split, which=args.checkpoint, **options) for path in runs}
    if args.json:
        return _emit({"split": args.split, "checkpoint": args.checkpoint, "runs": columns})
    table = Table("metric", *columns)
    if states:
        table.add_row("status", *(states.get(p, "completed") for p in columns))
    for key in sorted({k for metrics in columns.values() for k in metrics}):
        table.add_row(key, *(format_metric(metrics.get(key)) for metrics in columns.values()))
    console.print(table)
    return 0


def _emit(data: dict[str, Any]) -> int:
    """``evaluate --json``: the metrics alone on stdout (docs/cli.md)."""
    import json
    import sys

    from engine.runs import to_jsonable

    sys.stdout.write(json.dumps(to_jsonable(data), indent=2) + "\n")
    return 0


def _ensemble_line(result: dict[str, dict[str, float]], problem: str) -> str:
    """``ensemble of N: METRIC VALUE, best member VALUE``, by the problem type's primary metric."""
    from engine.tasks import PRIMARY

    figures = result["ensemble"]
    key, mode = PRIMARY.get(problem, (next(iter(figures)), "max"))
    members = [m[key] for name, m in result.items() if name != "ensemble"]
    best = max(members) if mode == "max" else min(members)
    return f"ensemble of {len(members)}: {key} {figures[key]:.4f}, best member {best:.4f}"
