"""Pre-train, then fine-tune: is a GPT pre-trained on unlabelled texts a better classifier from 10 % of the labels?

.venv/bin/python plugins/nlp/bench/pretrain_finetune.py [--seeds 0 1 2] [--out DIR] [--pre RUN] [--set K=V ...]

Runs the stages of ``plugins/nlp/pipelines/pretrain-finetune.yaml`` (the same configs: read from the file, each
stage composed and trained like ``engine run``, ``${stages.pre}`` replaced by the pre-training run's directory):
``pre`` once (seed 0), then ``fine`` (initialised from ``pre``) and ``scratch`` (not) for every seed, the seed
setting the run's seed (initialisation, batch order) and which 10 % of the training split is labelled
(``data.subset_seed``). Validation and test splits are the same for every run. Prints test accuracy per seed,
mean ± sample standard deviation, the per-seed difference, and wall times. ``--pre RUN`` reuses a finished
pre-training run (a former bench's ``pre``) instead of training one; ``--set`` adds overrides to ``fine`` and
``scratch`` (``--set checkpoint.monitor=val/loss``).
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path
from typing import Any

import yaml

PIPELINE = Path(__file__).resolve().parents[1] / "pipelines" / "pretrain-finetune.yaml"
REFERENCE = re.compile(r"\$\{\s*stages\s*\.\s*([A-Za-z0-9_-]+)\s*\}")
QUIET = ["trainer.enable_progress_bar=false", "trainer.enable_model_summary=false"]


def substitute(value: Any, dirs: dict[str, Path]) -> Any:
    """``value`` with every ``${stages.NAME}`` replaced by that stage's run directory (as ``engine pipeline`` does)."""
    if isinstance(value, str):
        return REFERENCE.sub(lambda m: str(dirs[m.group(1)]), value)
    if isinstance(value, dict):
        return {k: substitute(v, dirs) for k, v in value.items()}
    if isinstance(value, list):
        return [substitute(v, dirs) for v in value]
    return value


def stage_config(stages: dict[str, Any], name: str, dirs: dict[str, Path], run_dir: Path, extra: list[str]) -> Any:
    """Stage ``name`` of the pipeline (recipe, config sections, overrides) plus ``extra``, composed and planned."""
    import engine

    body = substitute(stages[name], dirs)
    sections = {k: v for k, v in body.items() if k not in ("recipe", "files", "config", "overrides")}
    files = [c for c in (body.get("config") or {}, sections) if c]
    overrides = [*body.get("overrides", []), *QUIET, f"run.dir={run_dir.parent}", f"run.name={run_dir.name}", *extra]
    return engine.plan(engine.compose(body.get("recipe"), files, overrides))


def stage_run(
    stages: dict[str, Any], name: str, dirs: dict[str, Path], run_dir: Path, extra: list[str]
) -> dict[str, Any]:
    """Train stage ``name``: its summary and wall time."""
    import engine

    plan = stage_config(stages, name, dirs, run_dir, extra)
    started = time.time()
    summary = engine.train(plan).summary
    return {"summary": summary, "wall": time.time() - started}


def _mean_std(values: list[float]) -> str:
    std = statistics.stdev(values) if len(values) > 1 else 0.0
    return f"{statistics.mean(values):.4f} ± {std:.4f}"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2], help="seeds of fine and scratch (default 0 1 2)")
    p.add_argument("--pipeline", default=str(PIPELINE), help="the pipeline file (default: the shipped one)")
    p.add_argument("--out", default=None, help="where the runs go (default: a temporary directory)")
    p.add_argument("--pre", default=None, help="reuse this finished pre-training run instead of training one")
    p.add_argument("--set", nargs="*", default=[], metavar="K=V", help="extra overrides of fine and scratch")
    args = p.parse_args()
    warnings.filterwarnings("ignore")
    import torch

    stages = yaml.safe_load(Path(args.pipeline).read_text(encoding="utf-8"))["stages"]
    root = Path(args.out or tempfile.mkdtemp(prefix="nlp-pretrain-finetune-")).expanduser()
    started = time.time()
    dirs = {"pre": Path(args.pre).resolve() if args.pre else root / "pre"}
    from engine.runs import planned_runs, read_json

    with planned_runs([dirs["pre"]]):  # every stage checked before anything trains, as `engine pipeline` does
        for name in ("fine", "scratch"):
            stage_config(stages, name, dirs, root / name, ["data.subset_seed=0", *args.set])
    if args.pre:
        pre = {"summary": read_json(dirs["pre"], "summary.json"), "wall": 0.0}
    else:
        pre = stage_run(stages, "pre", dirs, dirs["pre"], ["seed=0"])
    rows = []
    for seed in args.seeds:
        row: dict[str, Any] = {"seed": seed}
        for name in ("fine", "scratch"):
            seeds = [f"seed={seed}", f"data.subset_seed={seed}", *args.set]
            out = stage_run(stages, name, dirs, root / f"{name}-seed{seed}", seeds)
            row[name], row[f"{name}_wall"] = out["summary"]["metrics"]["test/accuracy"], out["wall"]
            if name == "fine":
                report = out["summary"]["transfer"]["model"]["init_from"]
                row["loaded"] = f"{report['loaded']} tensors loaded, fresh: {', '.join(report['missing'])}"
            print(f"seed {seed} {name}: test/accuracy {row[name]:.4f} ({out['wall']:.0f} s)", file=sys.stderr)
        rows.append(row)
    total = time.time() - started

    pm = pre["summary"]["metrics"]
    print(
        f"\npre-training: {pm['val/loss']:.4f} nats/token on validation (perplexity {pm['val/perplexity']:.1f}), "
        f"{pre['summary'].get('global_step', '?')} steps, {pre['wall']:.0f} s; {rows[0]['loaded']}"
    )
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; runs in {root}\n")
    print(f"{'seed':<8}{'fine-tuned':>12}{'scratch':>12}{'difference':>12}{'fine s':>9}{'scratch s':>11}")
    for r in rows:
        diff = r["fine"] - r["scratch"]
        print(
            f"{r['seed']:<8}{r['fine']:>12.4f}{r['scratch']:>12.4f}{diff:>+12.4f}"
            f"{r['fine_wall']:>9.0f}{r['scratch_wall']:>11.0f}"
        )
    fine, scratch = [r["fine"] for r in rows], [r["scratch"] for r in rows]
    diffs = [a - b for a, b in zip(fine, scratch, strict=True)]
    print(f"{'mean±std':<8}{_mean_std(fine):>16}{_mean_std(scratch):>18}  difference {_mean_std(diffs)}")
    wins = sum(d > 0 for d in diffs)
    print(
        f"\nfine-tuned better in {wins} of {len(diffs)} seeds; total wall time {total:.0f} s "
        f"(pre-training {pre['wall']:.0f} s)"
    )


if __name__ == "__main__":
    main()
