"""What a sweep directory holds, and the only code that writes it (the sweep's own process)::

    DIR/
      sweep.json          settings (metric, direction, space, trials, backend, base run) and the best trial
      results.csv         number,status,<one column per space key>,<metric>,wall_time_s,error — best first
      best_summary.json   the best trial's summary.json (its folds.json when trials cross-validate)
      study.db            the Optuna study (SQLite): sampler history, intermediate values for pruning
      records/NNN.json    one trial: number, status, params, value, wall time, error (the sweep's ledger)
      trials/NNN/         each trial, an ordinary run directory (3-digit zero-padded number)

Every path recorded is relative to DIR, and every file is written atomically (a temporary file,
renamed), so a sweep killed at any moment leaves files a resume can read. They are not fsynced,
like the study's own commits (see `engine_sweep.study.rdb_storage`): a trial costs no
disk flush (on a small VM, 8 flushes were ~20 ms of a sweep's per-trial overhead).
"""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path
from typing import Any

from engine import EngineError
from engine.runs import read_json, to_jsonable, write_json_atomic, write_text_atomic

SWEEP_FILE = "sweep.json"
RESULTS_FILE = "results.csv"
BEST_FILE = "best_summary.json"
STUDY_FILE = "study.db"
FOLDS_FILE = "folds.json"
FINISHED = ("completed", "pruned", "failed")
LOWER_IS_BETTER = ("loss", "error", "err", "mse", "mae", "rmse", "wer", "cer", "perplexity", "nll", "fid")


def trial_name(number: int) -> str:
    """``trials/007``: where trial ``number`` runs, relative to the sweep directory."""
    return f"trials/{number:03d}"


def default_direction(metric: str) -> str:
    """``min`` for losses and error rates (by name), ``max`` for everything else."""
    name = metric.rsplit("/", 1)[-1].lower()
    return "min" if any(part in LOWER_IS_BETTER for part in name.replace("-", "_").split("_")) else "max"


# --------------------------------------------------------------------------- sweep.json


def read_meta(root: Path) -> dict[str, Any]:
    meta = read_json(root, SWEEP_FILE)
    if not meta:
        raise EngineError(f"{root} is not a sweep directory (no {SWEEP_FILE})", hint="start one with `engine sweep`")
    return meta


def _write_json(file: Path, data: Any) -> None:
    write_json_atomic(file, to_jsonable(data), indent=2, durable=False)


def write_meta(root: Path, meta: dict[str, Any]) -> None:
    _write_json(root / SWEEP_FILE, meta)


# --------------------------------------------------------------------------- trial records


def record_path(root: Path, number: int) -> Path:
    return root / "records" / f"{number:03d}.json"


def write_record(root: Path, record: dict[str, Any]) -> None:
    _write_json(record_path(root, record["number"]), record)


def read_records(root: Path) -> dict[int, dict[str, Any]]:
    """Every trial record by number (a record a kill cut short cannot exist: they are written atomically)."""
    out: dict[int, dict[str, Any]] = {}
    for file in sorted((root / "records").glob("[0-9]*.json")):
        record = read_json(file.parent, file.name)
        if isinstance(record.get("number"), int):
            out[record["number"]] = record
    return out


def trial_value(run_dir: Path, metric: str) -> tuple[float | None, list[str]]:
    """The trial's figure of ``metric`` and the metrics it has.

    A cross-validated trial (``folds.json``) is judged by the fold mean; a run by its best
    checkpoint's value (the sweep monitors the metric, so that is its best validation), else its
    final value.
    """
    folds = read_json(run_dir, FOLDS_FILE)
    if folds:
        metrics = folds.get("metrics", folds)
        entry = metrics.get(metric) if isinstance(metrics, dict) else None
        names = sorted(k for k, v in metrics.items() if isinstance(v, dict) and "mean" in v)
        return (_number(entry.get("mean")) if isinstance(entry, dict) else None), names
    summary = read_json(run_dir, "summary.json")
    best, final = summary.get("best_metrics") or {}, summary.get("metrics") or {}
    value = best.get(metric, final.get(metric))
    return _number(value), sorted({*best, *final})


def _number(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
        return None
    return float(value)


# --------------------------------------------------------------------------- results


def ranked(records: dict[int, dict[str, Any]], direction: str) -> list[dict[str, Any]]:
    """Finished trials, best first: those with a value by it (ties by number), then the others by number."""
    finished = [r for r in records.values() if r.get("status") in FINISHED]
    sign = -1.0 if direction == "max" else 1.0

    def key(r: dict[str, Any]) -> tuple[int, float, int]:
        value = r.get("value")
        return (0, sign * value, r["number"]) if isinstance(value, (int, float)) else (1, 0.0, r["number"])

    return sorted(finished, key=key)


def best_record(records: dict[int, dict[str, Any]], direction: str) -> dict[str, Any] | None:
    """The best completed trial (a pruned one did not finish training; a failed one has no figure)."""
    completed = [r for r in ranked(records, direction) if r["status"] == "completed" and r.get("value") is not None]
    return completed[0] if completed else None


def results_csv(meta: dict[str, Any], records: dict[int, dict[str, Any]]) -> str:
    """``results.csv``: one row per finished trial, sorted by the metric (best first)."""
    from engine_sweep.space import cell

    keys, metric = list(meta["space"]), meta["metric"]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(["number", "status", *keys, metric, "wall_time_s", "error"])
    for r in ranked(records, meta["direction"]):
        params = r.get("params", {})
        value, wall = r.get("value"), r.get("wall_time_s")
        writer.writerow(
            [
                r["number"],
                r["status"],
                *(cell(params[k]) if k in params else "" for k in keys),
                repr(value) if isinstance(value, float) else "",
                f"{wall:.3f}" if isinstance(wall, (int, float)) else "",
                (r.get("error") or "").replace("\n", " ")[:500],
            ]
        )
    return out.getvalue()


def publish(root: Path, meta: dict[str, Any], records: dict[int, dict[str, Any]]) -> dict[str, Any]:
    """Write ``results.csv``, the best trial into ``sweep.json`` and its summary as ``best_summary.json``."""
    write_text_atomic(root / RESULTS_FILE, results_csv(meta, records), durable=False)
    best = best_record(records, meta["direction"])
    changed = (meta.get("best") or {}).get("number") != (best or {}).get("number")
    meta["best"] = (
        None
        if best is None
        else {"number": best["number"], "value": best["value"], "params": best["params"], "run": best["run"]}
    )
    meta["finished"] = sum(1 for r in records.values() if r.get("status") in FINISHED)
    meta["counts"] = {s: sum(1 for r in records.values() if r.get("status") == s) for s in FINISHED}
    write_meta(root, meta)
    if best is not None and (changed or not (root / BEST_FILE).is_file()):
        run_dir = root / best["run"]
        source = run_dir / FOLDS_FILE if (run_dir / FOLDS_FILE).is_file() else run_dir / "summary.json"
        if source.is_file():
            best_summary = json.dumps(json.loads(source.read_text()), indent=2) + "\n"
            write_text_atomic(root / BEST_FILE, best_summary, durable=False)
    return meta
