"""``engine runs list`` and ``runs compare``: runs, and run collections any plugin describes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

#: A plugin describing its own directories of runs (as engine-sweep does its sweeps).
STUDY = """
import json
from engine import RunCollection, hookimpl


@hookimpl
def engine_run_collection(path):
    if not (path / "study.json").is_file():
        return None
    meta = json.loads((path / "study.json").read_text())
    trials = sorted(p for p in (path / "trials").iterdir() if p.is_dir())
    primary = {"name": meta["metric"], "mode": "max", "value": meta["value"]}
    members = [(f"trials/{t.name}", t) for t in trials]
    return RunCollection("sweep", path, members, figures={"primary_metric": primary}, best=meta["best"])
"""


def make_study(root: Path, tiny_run: Any) -> Path:
    """A study of three tiny runs differing in their learning rate; the best by val/accuracy recorded."""
    study = root / "study"
    values = {}
    for i, lr in enumerate((1e-4, 3e-3, 3e-2)):
        summary = tiny_run(study / "trials", f"'{i:03d}'", f"optimizer.lr={lr}").summary  # quoted: a name
        values[f"trials/{i:03d}"] = summary["best_metrics"]["val/accuracy"]
    best = max(values, key=values.__getitem__)
    (study / "study.json").write_text(json.dumps({"metric": "val/accuracy", "value": values[best], "best": best}))
    return study


def test_runs_list_sorts_by_start(cli: Any, tmp_path: Path) -> None:
    for name, started in (("b-first", "2026-01-01T10:00:00"), ("a-second", "2026-01-02T09:00:00")):
        (tmp_path / name).mkdir()
        summary = {"status": "completed", "started": started, "wall_time_s": 1.0}
        (tmp_path / name / "summary.json").write_text(json.dumps(summary))
    out = cli("runs", "list", "--dir", str(tmp_path))
    assert out.returncode == 0, out.stderr
    assert out.stdout.index("b-first") < out.stdout.index("a-second")
    assert "2026-01-01 10:00" in out.stdout
    missing = cli("runs", "list", "--dir", str(tmp_path / "none"))  # a mistyped directory is not "no runs"
    assert missing.returncode == 2 and "runs directory not found" in missing.stderr
    (tmp_path / "empty").mkdir()
    assert cli("runs", "list", "--dir", str(tmp_path / "empty")).stdout.startswith("no runs in")
    assert cli("runs").returncode == 0  # the group alone prints its help


def test_runs_compare_shows_what_differs(cli: Any, tiny_run: Any, tmp_path: Path) -> None:
    for name, lr in (("slow", "1e-4"), ("fast", "3e-2")):
        tiny_run(tmp_path, name, f"optimizer.lr={lr}")
    out = cli("runs", "compare", str(tmp_path / "slow"), str(tmp_path / "fast"))
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert "optimizer.lr" in lines[0] and "test/accuracy *" in lines[0]
    assert {lines[1].split()[0], lines[2].split()[0]} == {"slow", "fast"}
    missing = cli("runs", "compare", str(tmp_path / "nothing"))
    assert missing.returncode == 2 and "run directory not found" in missing.stderr
    (tmp_path / "empty").mkdir()
    other = cli("runs", "compare", str(tmp_path / "empty"))
    assert other.returncode == 2 and "is not a run, cross-validation or sweep directory" in other.stderr


def test_a_collection_is_listed_compared_and_reported(
    cli: Any, plugin_site: Any, tiny_run: Any, tmp_path: Path
) -> None:
    pytest.importorskip("matplotlib")
    plugin_site("study", STUDY)
    study = make_study(tmp_path, tiny_run)

    out = cli("runs", "compare", str(study))  # expanded into its members, generically
    assert out.returncode == 0, out.stderr
    assert out.stdout.count("study/") == 3 and "optimizer.lr" in out.stdout.splitlines()[0]
    listed = cli("runs", "list", "--dir", str(tmp_path))
    assert [line.split()[0] for line in listed.stdout.splitlines()[1:]] == ["study/000", "study/001", "study/002"]

    out = cli("report", str(study))
    assert out.returncode == 0, out.stderr
    report = study / "report"
    assert (report / "sweep.png").stat().st_size > 1000 and (report / "curves.png").is_file()
    text = (report / "report.md").read_text()
    assert "# Sweep study" in text and "3 finished trials of 3; metric `val/accuracy` (max)." in text
    assert "| member | optimizer.lr | val/accuracy | wall_time_s |" in text
    best = json.loads((study / "study.json").read_text())["best"]
    assert f"## Best: {best}" in text


def test_a_collections_report_draws_a_wide_positive_setting_on_a_log_axis() -> None:
    from engine_experiments.report_collection import _log_scale

    assert _log_scale([1e-4, 3e-3, 3e-2])  # a learning rate over more than two orders of magnitude
    assert not _log_scale([16.0, 64.0, 256.0]) and not _log_scale([-1.0, 1000.0]) and not _log_scale([])


def _fake_run(root: Path, name: str, config: dict[str, Any], value: float | None, status: str = "completed") -> Path:
    """A run directory as `engine run` leaves it, without training: config.yaml and summary.json."""
    import yaml

    run = root / name
    run.mkdir(parents=True)
    (run / "config.yaml").write_text(yaml.safe_dump({"run": {"name": name}, **config}))
    summary: dict[str, Any] = {"status": status, "wall_time_s": 3.0, "metrics": {}}
    if value is not None:
        summary["metrics"] = {"test/accuracy": value, "test/loss": 1 - value}
        summary["primary_metric"] = {"name": "test/accuracy", "mode": "max", "value": value}
    (run / "summary.json").write_text(json.dumps(summary))
    return run


def test_runs_compare_of_four_different_runs_fits_the_terminal(
    cli: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("COLUMNS", "100")
    runs = []
    for i in range(4):  # four recipes: ~30 config keys differ
        config = {f"section{i}": {f"setting_{k}": f"value-{i}-{k}" for k in range(8)}, "model": {"name": f"m{i}"}}
        config["data"] = {"shared_setting": 7}
        runs.append(_fake_run(tmp_path, f"run-{i}", config, 0.5 + i / 10))
    out = cli("runs", "compare", *map(str, runs))
    assert out.returncode == 0, out.stderr
    lines = out.stdout.splitlines()
    assert max(map(len, lines)) <= 100, out.stdout
    assert lines[0].split() == ["run-3", "run-2", "run-1", "run-0"]  # turned: runs as columns, best first
    assert any(line.startswith("test/accuracy *") for line in lines) and any("model.name" in x for x in lines)
    everything = cli("runs", "compare", "--all", *map(str, runs[:2]))
    assert everything.returncode == 0 and "data.shared_setting" in everything.stdout  # the same in both
    assert "data.shared_setting" not in cli("runs", "compare", *map(str, runs[:2])).stdout


def test_runs_compare_keeps_its_order_when_a_run_was_interrupted(cli: Any, tmp_path: Path) -> None:
    runs = [
        _fake_run(tmp_path, "mid", {"optimizer": {"lr": 0.01}}, 0.7),
        _fake_run(tmp_path, "stopped", {"optimizer": {"lr": 0.1}}, None, status="interrupted"),
        _fake_run(tmp_path, "best", {"optimizer": {"lr": 0.001}}, 0.9),
        _fake_run(tmp_path, "worst", {"optimizer": {"lr": 1.0}}, 0.2),
    ]
    out = cli("runs", "compare", *map(str, runs))
    assert out.returncode == 0, out.stderr
    assert [line.split()[0] for line in out.stdout.splitlines()[1:5]] == ["best", "mid", "worst", "stopped"]
    assert "test/accuracy *" in out.stdout.splitlines()[0]


def test_runs_compare_tells_runs_of_one_name_apart_and_keeps_small_settings(cli: Any, tmp_path: Path) -> None:
    a = _fake_run(tmp_path / "a", "seed0", {"optimizer": {"eps": 1e-8}}, 0.7)
    b = _fake_run(tmp_path / "b", "seed0", {"optimizer": {"eps": 1e-6}}, 0.8)
    out = cli("runs", "compare", str(a), str(b))
    assert out.returncode == 0, out.stderr
    assert [line.split()[0] for line in out.stdout.splitlines()[1:3]] == ["b/seed0", "a/seed0"]
    assert "1e-06" in out.stdout and "1e-08" in out.stdout  # not 0.0000


def test_runs_list_json_and_the_default_places(
    cli: Any, plugin_site: Any, tiny_run: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Without --dir: the runs directory ($ENGINE_RUNS_DIR) and the sweeps in sweeps/; names `open_run` takes."""
    import engine

    plugin_site("study", STUDY)
    monkeypatch.chdir(tmp_path)
    make_study(tmp_path / "sweeps", tiny_run)
    tiny_run(tmp_path / "mine", "solo")
    monkeypatch.setenv("ENGINE_RUNS_DIR", str(tmp_path / "mine"))
    out = cli("runs", "list", "--json")
    assert out.returncode == 0, out.stderr
    rows = json.loads(out.stdout)
    names = [r["name"] for r in rows]  # by start; a collection's members together, in its order
    assert sorted(names) == ["solo", "sweeps/study/000", "sweeps/study/001", "sweeps/study/002"]
    assert [n for n in names if n != "solo"] == ["sweeps/study/000", "sweeps/study/001", "sweeps/study/002"]
    solo = rows[names.index("solo")]
    assert set(solo) == {"name", "path", "kind", "status", "started", "primary_metric", "wall_time_s"}
    assert solo["kind"] == "run" and solo["status"] == "completed" and solo["path"] == str(tmp_path / "mine/solo")
    assert solo["primary_metric"]["name"] == "test/accuracy" and 0 <= solo["primary_metric"]["value"] <= 1
    for row in rows:  # every name listed opens as a run
        assert engine.open_run(row["name"]).path.resolve() == Path(row["path"]).resolve()
    assert "sweeps/study/001" in cli("runs", "list").stdout


def test_runs_compare_json(cli: Any, tiny_run: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name, lr in (("slow", "1e-4"), ("fast", "3e-2")):
        tiny_run(tmp_path, name, f"optimizer.lr={lr}")
    monkeypatch.setenv("ENGINE_RUNS_DIR", str(tmp_path))
    out = cli("runs", "compare", "slow", "fast", "--json")  # names as `runs list` prints them
    assert out.returncode == 0, out.stderr
    data = json.loads(out.stdout)
    assert data["varied"] == ["optimizer.lr"] and data["primary_metric"] == "test/accuracy"
    assert {r["name"] for r in data["runs"]} == {"slow", "fast"}
    first = data["runs"][0]
    assert set(first) == {"name", "path", "status", "config", "primary_metric", "metrics", "wall_time_s", "cv"}
    assert first["cv"] is None  # not cross-validated
    assert first["primary_metric"]["mode"] == "max" and first["config"]["optimizer.lr"] in (1e-4, 3e-2)
    values = [r["primary_metric"]["value"] for r in data["runs"]]
    assert values == sorted(values, reverse=True) and "test/loss" in first["metrics"]
