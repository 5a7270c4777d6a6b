"""Conformance kit, training through the engine, the recommend command, config errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.cli import main
from engine.testing import run_cli

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
    "trainer.enable_progress_bar=false",
    "trainer.enable_model_summary=false",
]


def test_conformance(engine_check, u_data: Path) -> None:  # type: ignore[no-untyped-def]
    # recsys/movielens needs data.path: run on a MovieLens file in test_closed_form.py
    passed = engine_check(
        "recsys", data_params={"recsys.interactions": {"path": str(u_data)}}, skip=("recsys/movielens",)
    )
    assert "recipe 'recsys/synthetic-mf' completes fast_dev_run" in passed
    for model in ("two_tower", "ease", "als"):
        assert f"model 'recsys.{model}' forward/backward" in passed


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small MF run trained through `engine run` (in process), shared by the command tests."""
    root = tmp_path_factory.mktemp("runs")
    code = main(["run", "recsys/synthetic-mf", *TINY, f"run.dir={root}", "run.name=mf"])
    assert code == 0
    return root / "mf"


def test_training_beats_popularity(trained_run: Path) -> None:
    summary = json.loads((trained_run / "summary.json").read_text())
    m = summary["metrics"]
    assert summary["status"] == "completed"
    for key in ("test/recall@10", "test/ndcg@20", "test/hit@10", "test/pop_recall@10", "test/ease_recall@10"):
        assert key in m
    assert m["test/recall@10"] > 1.5 * m["test/pop_recall@10"]  # measured: 0.54 vs 0.23
    facts = json.loads((trained_run / "facts.json").read_text())
    assert facts["num_users"] == 400 and facts["num_items"] == 120


def test_recommend_command(trained_run: Path) -> None:
    from engine_recsys.synthetic import Synthetic

    r = run_cli("recommend", str(trained_run), "--user", "7", "--k", "5", "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    items = [row["item"] for row in out["recommendations"]]
    assert len(items) == 5 and len(set(items)) == 5
    scores = [row["score"] for row in out["recommendations"]]
    assert scores == sorted(scores, reverse=True)
    src = Synthetic(**EASY)
    seen = {src.item_ids[i] for i in src.all.row(src.user_index("7")).tolist()}
    assert out["seen"] == len(seen) and not seen & set(items)  # seen items are never recommended

    r = run_cli("recommend", str(trained_run), "--user", "nobody")
    assert r.returncode == 2
    assert "unknown user id 'nobody'" in r.stderr and "Traceback" not in r.stderr


def test_recommend_unknown_items_and_bad_k(trained_run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["recommend", str(trained_run), "--user", "7", "--items", "3", "999999"]) == 2
    assert "unknown item id(s) '999999'" in capsys.readouterr().err
    assert main(["recommend", str(trained_run), "--user", "7", "--k", "0"]) == 2
    assert "--k must be at least 1" in capsys.readouterr().err


def test_recommend_table_and_candidates(trained_run: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["recommend", str(trained_run), "--user", "7", "--items", "1", "2", "3", "--include-seen"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("top 3 for user 7 (recsys.mf)")
    assert {line.split()[1] for line in out.splitlines()[2:]} == {"1", "2", "3"}


def test_recommend_help_and_bad_run(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["recommend", "--help"])
    assert "--include-seen" in capsys.readouterr().out
    assert main(["recommend", str(tmp_path), "--user", "1"]) == 2
    assert "not a run directory" in capsys.readouterr().err


@pytest.mark.parametrize("data", ["recsys.synthetic", "interactions"])
def test_recsys_data_implies_ranking_task(capsys: pytest.CaptureFixture[str], tmp_path, data: str) -> None:
    # short names too: the plugin sees them qualified (data=interactions once selected core.supervised)
    (tmp_path / "u.csv").write_text("user,item,rating\n1,1,5\n1,2,4\n2,1,5\n2,3,4\n3,2,5\n3,3,4\n")
    path = [f"data.path={tmp_path / 'u.csv'}"] if data == "interactions" else []
    assert main(["run", "model=mf", f"data={data}", *path, "--dry-run"]) == 0
    out = capsys.readouterr().out
    assert "name: recsys.ranking" in out and "monitor: val/ndcg@10" in out and "mode: max" in out


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["model=mlp", "data=recsys.synthetic"], "needs parameter"),
        (["model=recsys.mf", "data=recsys.synthetic", "data.split=random"], "data.split must be"),
        (["model=recsys.mf", "data=recsys.interactions"], "needs parameter 'path'"),
        (["model=recsys.mf", "data=recsys.synthetic", "loss=recsys.hinge"], "unknown loss"),
    ],
)
def test_config_mistakes_are_one_line_errors(args: list[str], message: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["run", *args, "--dry-run"]) == 2
    assert message in capsys.readouterr().err


def test_bad_k_and_missing_file_fail_before_training(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    base = ["run", "recsys/synthetic-mf", *TINY, f"run.dir={tmp_path}"]
    assert main([*base, "task.k=[0]"]) == 2
    assert "task.k must be a list of positive integers" in capsys.readouterr().err
    missing = ["run", "model=recsys.mf", "data=recsys.interactions", f"data.path={tmp_path / 'no.csv'}"]
    assert main([*missing, f"run.dir={tmp_path}"]) == 2
    assert "interactions file not found" in capsys.readouterr().err
    assert not any(tmp_path.iterdir())  # nothing was left behind
