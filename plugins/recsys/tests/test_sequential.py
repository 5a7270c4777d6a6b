"""Sequential recommendation: time-ordered histories, SASRec's causal mask, the next-item recipe."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch
from engine_recsys.datasets import SequenceWindows
from engine_recsys.files import Interactions
from engine_recsys.metrics import RankingMetrics
from engine_recsys.sasrec import SASRec, next_item_ce
from engine_recsys.synthetic import Synthetic

import engine
from engine.testing import train_run

# user item rating timestamp (u.data layout). User 1: 11 (t=100), then 12 and 13 at the same time
# (file order), 10, 14; user 2 has one interaction; user 3 two.
FILE = """\
1\t10\t5\t300
1\t12\t5\t200
1\t11\t5\t100
1\t13\t5\t200
1\t14\t5\t400
2\t10\t5\t50
3\t12\t5\t20
3\t11\t5\t10
"""


@pytest.fixture
def source(tmp_path: Path) -> Interactions:
    path = tmp_path / "u.data"
    path.write_text(FILE, encoding="utf-8")
    return Interactions(path=str(path), sequence_length=2)


def test_histories_are_time_ordered_with_ties_in_file_order(source: Interactions) -> None:
    # items "10".."14" are indices 0..4; histories hold item + 1, left-padded with 0
    one, two, three = torch.tensor([0]), torch.tensor([1]), torch.tensor([2])
    assert source.history(one, "all", length=6).tolist() == [[0, 2, 3, 4, 1, 5]]  # 11, 12, 13, 10, 14
    assert source.history(one, "test", length=6).tolist() == [[0, 0, 2, 3, 4, 1]]  # before the last (test) item
    assert source.history(one, "val", length=6).tolist() == [[0, 0, 0, 2, 3, 4]]  # before the validation item
    assert source.history(one, "all", length=3).tolist() == [[4, 1, 5]]  # the most recent ones
    assert source.history(two, "all", length=3).tolist() == [[0, 0, 1]]  # one interaction: training only
    assert source.history(two, "val", length=3).tolist() == [[0, 0, 1]]
    assert source.history(three, "test", length=3).tolist() == [[0, 0, 2]]  # two: train + test, no val
    # training rows: user 1's training items 11, 12, 13 -> inputs [11, 12], targets [12, 13]; users 2, 3: none
    x, y = source.datasets()["train"].__getitems__([0])
    assert len(source.datasets()["train"]) == 1
    assert x.tolist() == [[2, 3]] and y.tolist() == [[3, 4]]
    # the held-out items match the histories: val is 10 (index 0), test 14 (index 4) for user 1
    _, (seen, target) = source.datasets()["test"].__getitems__([0])
    assert target[0].nonzero().flatten().tolist() == [4] and seen[0].nonzero().flatten().tolist() == [0, 1, 2, 3]
    # a user scored by id (engine recommend) is scored from the whole known history
    model = SASRec(3, 5, dim=8, max_length=2).eval()
    with pytest.raises(RuntimeError, match="attach it to data first"):
        model.score_all(one)
    model.set_histories(lambda users: source.history(users, "all"))
    with torch.no_grad():
        torch.testing.assert_close(model.score_all(one), model.score_sequences(torch.tensor([[1, 5]])))


def test_windows_train_every_prefix_once() -> None:
    rows = SequenceWindows([torch.arange(7), torch.tensor([3])], 3)
    assert rows.x.tolist() == [[4, 5, 6], [1, 2, 3]]
    assert rows.y.tolist() == [[5, 6, 7], [2, 3, 4]]
    short = SequenceWindows([torch.tensor([5, 6])], 4)
    assert short.x.tolist() == [[0, 0, 0, 6]] and short.y.tolist() == [[0, 0, 0, 7]]


def test_sasrec_cannot_see_the_future() -> None:
    torch.manual_seed(0)
    model = SASRec(5, 20, dim=16, layers=2, heads=2, max_length=6).eval()
    seq = torch.tensor([[0, 3, 7, 1, 9, 4]])
    later = seq.clone()
    later[0, 4] = 15  # change the 5th item
    with torch.no_grad():
        a, b = model(seq), model(later)
    torch.testing.assert_close(a[0, :4], b[0, :4])  # earlier positions: unchanged
    assert not torch.allclose(a[0, 4:], b[0, 4:])  # the changed position and later ones see it
    torch.testing.assert_close(model.score_sequences(seq), a[:, -1])
    # padding is not attended to: more padding on the left changes no output of a real position
    wide = SASRec(5, 20, dim=16, layers=2, heads=2, max_length=8).eval()
    with torch.no_grad():
        short, padded = wide(seq[:, 1:]), wide(torch.cat([torch.zeros(1, 2, dtype=torch.long), seq], 1))
    torch.testing.assert_close(short, padded[:, -5:])
    loss = next_item_ce()(a, torch.tensor([[0, 7, 1, 9, 4, 2]]))
    assert loss.item() > 0
    one = next_item_ce()(a[:, -1], torch.tensor([3]))  # one position per row
    torch.testing.assert_close(one, torch.nn.functional.cross_entropy(a[:, -1], torch.tensor([2])))
    with pytest.raises(ValueError, match="next_item_ce takes logits"):
        next_item_ce()(a, torch.tensor([1]))


def test_seen_items_are_everything_before_the_held_out_one(source: Interactions) -> None:
    # documented: a test user's training items and validation item are excluded from the ranking,
    # a validation user's training items
    _, (seen, target) = source.datasets()["val"].__getitems__([0])
    assert seen[0].nonzero().flatten().tolist() == [1, 2, 3] and target[0].nonzero().flatten().tolist() == [0]
    _, (seen, target) = source.datasets()["test"].__getitems__([0])
    scores = torch.tensor([[9.0, 8.0, 7.0, 6.0, 1.0]])  # seen items first, the test item last
    metric = RankingMetrics([1])
    metric.update(scores, seen, target)
    assert metric.compute()["recall@1"] == 1.0  # the four seen items are left out: the test item is first


def _write(path: Path, seed: int = 0) -> Path:
    src = Synthetic(
        num_users=120, num_items=60, interactions_per_user=12, genre_stickiness=0.5, release_spread=0.5, seed=seed
    )
    users, items, times = src.events
    rows = [f"{u + 1}\t{i + 1}\t5\t{int(t) + 880000000}" for u, i, t in zip(users, items, times, strict=True)]
    path.write_text("\n".join(rows) + "\n", encoding="utf-8")
    return path


def test_generator_draws_genre_runs_and_releases_in_time_order() -> None:
    src = Synthetic(num_users=300, num_items=200, interactions_per_user=20, genre_stickiness=0.6, seed=1)
    again = Synthetic(num_users=300, num_items=200, interactions_per_user=20, genre_stickiness=0.6, seed=1)
    assert torch.equal(src.events[1], again.events[1])  # seeded
    static = Synthetic(num_users=300, num_items=200, interactions_per_user=20, drift=0.0, seed=1)
    assert src.facts["num_interactions"] == static.facts["num_interactions"]  # the same activity draws


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_movielens_recipe_with_sasrec_runs_and_chooses_on_validation(tmp_path: Path, cli: Any) -> None:
    path = _write(tmp_path / "u.data")
    quick = ["trainer.max_epochs=2", "trainer.check_val_every_n_epoch=1", "model.dim=16", "fallback.l2=[10.0,100.0]"]
    train_run(f"data.path={path}", *quick, root=tmp_path, name="seq", recipe="recsys/movielens")
    summary = json.loads((tmp_path / "seq" / "summary.json").read_text())
    m = summary["metrics"]
    assert summary["status"] == "completed" and summary["global_step"] > 1
    for key in ("test/recall@10", "test/ease_recall@10", "test/pop_recall@10", "test/fallback_chosen"):
        assert key in m, key
    assert {"val/model_ndcg@10", "val/fallback_ndcg@10"} <= set(m)
    # engine recommend scores a user of the run from the whole known history (or with the chosen fallback)
    r = cli("recommend", str(tmp_path / "seq"), "--user", "3", "--k", "4", "--json")
    assert r.returncode == 0, r.stderr
    assert len(json.loads(r.stdout)["recommendations"]) == 4
    # an untrained SASRec (no step at lr 0) loses to EASE on validation: the run's figures are EASE's
    train_run(f"data.path={path}", *quick, "optimizer.lr=0", root=tmp_path, name="untrained", recipe="recsys/movielens")
    m = json.loads((tmp_path / "untrained" / "summary.json").read_text())["metrics"]
    assert m["test/fallback_chosen"] == 1.0 and m["val/fallback_ndcg@10"] > m["val/model_ndcg@10"]
    assert m["test/recall@10"] > m["test/pop_recall@10"]


def test_sasrec_settings_are_checked_at_plan_time(tmp_path: Path, cli: Any) -> None:
    path = _write(tmp_path / "u.data")
    cfg = engine.compose("recsys/movielens", overrides=[f"data.path={path}", "model.max_length=20"])
    assert engine.plan(cfg).config["data"]["sequence_length"] == 20  # filled from the model
    r = cli("run", "recsys/movielens", f"data.path={path}", "loss=recsys.bpr", "--dry-run")
    assert r.returncode == 2 and "set loss=recsys.next_item_ce" in r.stderr and "Traceback" not in r.stderr
    r = cli("run", "recsys/movielens", f"data.path={path}", "data.sequence_length=80", "--dry-run")
    assert r.returncode == 2 and "longer than model.max_length=50" in r.stderr
