"""Conformance kit, training through the engine, the recommend command, config errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from engine.testing import train_run

#: Small, easy data: the earlier synthetic defaults (static tastes, lighter tails) at 400 x 120.
EASY = {
    "num_users": 400,
    "num_items": 120,
    "interactions_per_user": 20,
    "preference_strength": 4.0,
    "popularity_exponent": 1.0,
    "activity_sigma": 0.6,
    "drift": 0.0,
}
TINY = [
    *(f"data.{k}={v}" for k, v in EASY.items()),
    "data.batch_size=256",
    "optimizer.lr=0.02",
    "trainer.max_epochs=15",
]


def test_conformance(engine_check, u_data: Path) -> None:  # type: ignore[no-untyped-def]
    # recsys/movielens requires data.path (left out by the kit): run on a MovieLens file in test_closed_form.py
    passed = engine_check("recsys", data_params={"recsys.interactions": {"path": str(u_data)}})
    assert "recipe 'recsys/synthetic-mf' completes fast_dev_run" in passed
    for model in ("two_tower", "ease", "als"):
        assert f"model 'recsys.{model}' forward/backward" in passed


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small MF run (in process), shared by the command tests."""
    root = tmp_path_factory.mktemp("runs")
    return train_run(*TINY, root=root, name="mf", recipe="recsys/synthetic-mf").run_dir


def test_training_beats_popularity(trained_run: Path) -> None:
    summary = json.loads((trained_run / "summary.json").read_text())
    m = summary["metrics"]
    assert summary["status"] == "completed"
    for key in ("test/recall@10", "test/ndcg@20", "test/hit@10", "test/pop_recall@10", "test/ease_recall@10"):
        assert key in m
    assert m["test/recall@10"] > 1.5 * m["test/pop_recall@10"]  # measured: 0.54 vs 0.23
    facts = json.loads((trained_run / "facts.json").read_text())
    assert facts["num_users"] == 400 and facts["num_items"] == 120


def test_recommend_command(trained_run: Path, cli: Any) -> None:
    from engine_recsys.synthetic import Synthetic

    r = cli("recommend", str(trained_run), "--user", "7", "--k", "5", "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    items = [row["item"] for row in out["recommendations"]]
    assert len(items) == 5 and len(set(items)) == 5
    scores = [row["score"] for row in out["recommendations"]]
    assert scores == sorted(scores, reverse=True)
    src = Synthetic(**EASY)
    seen = {src.item_ids[i] for i in src.all.row(src.user_index("7")).tolist()}
    assert out["seen"] == len(seen) and not seen & set(items)  # seen items are never recommended

    r = cli("recommend", str(trained_run), "--user", "nobody")
    assert r.returncode == 2
    assert "unknown user id 'nobody'" in r.stderr and "Traceback" not in r.stderr


def test_recommend_unknown_items_and_bad_k(trained_run: Path, cli: Any) -> None:
    r = cli("recommend", str(trained_run), "--user", "7", "--items", "3", "999999")
    assert r.returncode == 2 and "unknown item id(s) '999999'" in r.stderr
    r = cli("recommend", str(trained_run), "--user", "7", "--k", "0")
    assert r.returncode == 2 and "--k must be at least 1" in r.stderr


def test_recommend_table_and_candidates(trained_run: Path, cli: Any) -> None:
    r = cli("recommend", str(trained_run), "--user", "7", "--items", "1", "2", "3", "--include-seen")
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("top 3 for user 7 (recsys.mf)")
    assert {line.split()[1] for line in r.stdout.splitlines()[2:]} == {"1", "2", "3"}


def test_recommend_help_and_bad_run(tmp_path: Path, cli: Any) -> None:
    shown = cli("recommend", "--help")
    assert shown.returncode == 0 and "--include-seen" in shown.stdout
    r = cli("recommend", str(tmp_path), "--user", "1")
    assert r.returncode == 2 and "not a run directory" in r.stderr


@pytest.mark.parametrize("data", ["recsys.synthetic", "interactions"])
def test_recsys_data_implies_ranking_task(cli: Any, tmp_path: Path, data: str) -> None:
    # short names too: the data source's declared task (Component(task=...)) and the ranking task's check
    (tmp_path / "u.csv").write_text("user,item,rating\n1,1,5\n1,2,4\n2,1,5\n2,3,4\n3,2,5\n3,3,4\n")
    path = [f"data.path={tmp_path / 'u.csv'}"] if data == "interactions" else []
    r = cli("run", "model=mf", f"data={data}", *path, "--dry-run")
    assert r.returncode == 0, r.stderr
    assert "name: recsys.ranking" in r.stdout and "monitor: val/ndcg@10" in r.stdout and "mode: max" in r.stdout


def test_ranking_monitor_follows_k_and_a_chosen_monitor_is_kept() -> None:
    import engine

    base = ["model=recsys.mf", "data=recsys.synthetic"]
    cfg = engine.plan(engine.compose(None, overrides=[*base, "task.k=[20,5]"])).config
    assert cfg["checkpoint"]["monitor"] == "val/ndcg@5" and cfg["checkpoint"]["mode"] == "max"
    cfg = engine.plan(engine.compose(None, overrides=[*base, "checkpoint.monitor=val/recall@20"])).config
    assert cfg["checkpoint"]["monitor"] == "val/recall@20" and cfg["checkpoint"]["mode"] == "max"
    cfg = engine.plan(engine.compose(None, overrides=[*base, "checkpoint.monitor=val/loss"])).config
    assert cfg["checkpoint"]["monitor"] == "val/loss" and cfg["checkpoint"]["mode"] == "min"
    assert engine.plan(cfg).config == cfg  # the resolved config plans to itself


def test_movielens_recipe_requires_data_path(cli: Any) -> None:
    r = cli("plugins", "info", "recsys")
    assert r.returncode == 0, r.stderr
    assert "data.path" in r.stdout
    r = cli("run", "recsys/movielens", "--dry-run")
    assert r.returncode == 2 and "data.path" in r.stderr and "Traceback" not in r.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["model=mlp", "data=recsys.synthetic"], "needs parameter"),
        (["model=recsys.mf", "data=recsys.synthetic", "data.split=random"], "data.split must be"),
        (["model=recsys.mf", "data=recsys.interactions"], "needs parameter 'path'"),
        (["model=recsys.mf", "data=recsys.synthetic", "loss=recsys.hinge"], "unknown loss"),
        (["model=recsys.mf", "data=recsys.synthetic", "task.k=[0]"], "task.k must be a list of positive integers"),
    ],
)
def test_config_mistakes_are_one_line_errors(args: list[str], message: str, cli: Any) -> None:
    r = cli("run", *args, "--dry-run")
    assert r.returncode == 2 and message in r.stderr and "Traceback" not in r.stderr


def test_bad_k_and_missing_file_fail_before_training(tmp_path: Path, cli: Any) -> None:
    r = cli("run", "recsys/synthetic-mf", *TINY, f"run.dir={tmp_path}", "task.k=[0]")
    assert r.returncode == 2 and "task.k must be a list of positive integers" in r.stderr
    missing = ["run", "model=recsys.mf", "data=recsys.interactions", f"data.path={tmp_path / 'no.csv'}"]
    r = cli(*missing, f"run.dir={tmp_path}")
    assert r.returncode == 2 and "data.path: no such file or directory" in r.stderr
    assert not any(tmp_path.iterdir())  # nothing was left behind
