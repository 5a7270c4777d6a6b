"""EASE and ALS (closed form), the EASE baseline, the MovieLens recipe, the harder synthetic data."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from engine_recsys.als import ALS, objective, solve_side
from engine_recsys.baselines import EaseBaseline
from engine_recsys.closed_form import EASE, choose_pair, csr_parts, ease_weights, gram, interaction_matrix
from engine_recsys.files import Interactions
from engine_recsys.synthetic import Synthetic

from engine.testing import train_run

#: Small data on which personal taste matters (the earlier synthetic defaults, 400 users x 120 items).
EASY = [
    "data=recsys.synthetic",
    "data.num_users=400",
    "data.num_items=120",
    "data.interactions_per_user=20",
    "data.preference_strength=4.0",
    "data.popularity_exponent=1.0",
    "data.activity_sigma=0.6",
    "data.drift=0.0",
]


def _tiny_matrix(seed: int = 0, users: int = 30, items: int = 12) -> tuple[torch.Tensor, np.ndarray]:
    g = torch.Generator().manual_seed(seed)
    dense = torch.rand(users, items, generator=g) < 0.3
    u, i = dense.nonzero().T
    return interaction_matrix(u, i, None, users, items), dense.double().numpy()


@pytest.mark.parametrize("dropout", [0.0, 0.3])
def test_ease_closed_form_matches_a_direct_solve(dropout: float) -> None:
    x, dense = _tiny_matrix()
    l2 = 3.0
    # each column j of B: ridge regression of item j on the other items (B_jj = 0), with each
    # item's penalty l2 + dropout / (1 - dropout) * its count
    n = dense.shape[1]
    counts = dense.sum(0)
    expected = np.zeros((n, n))
    for j in range(n):
        others = [k for k in range(n) if k != j]
        a = dense[:, others]
        penalty = np.diag(l2 + dropout / (1 - dropout) * counts[others])
        expected[others, j] = np.linalg.solve(a.T @ a + penalty, a.T @ dense[:, j])
    got = ease_weights(gram(x), l2, dropout).double().numpy()
    np.testing.assert_allclose(got, expected, atol=1e-6)
    model = EASE(30, 12, l2=l2, dropout=dropout)
    model.fit_closed_form(x)
    with torch.no_grad():
        np.testing.assert_allclose(model.score_all(torch.arange(30)).double().numpy(), dense @ expected, atol=1e-5)
        pairs = torch.tensor([[3, 0, 5, 7], [9, 11, 2, 4]])
        torch.testing.assert_close(model(pairs), model.score_all(pairs[:, 0]).gather(1, pairs[:, 1:]))


@pytest.mark.parametrize("budget", [1 << 18, 5])  # one batch of rows, or many small ones
def test_als_solve_is_the_exact_weighted_least_squares_solution(budget: int) -> None:
    g = torch.Generator().manual_seed(1)
    dense = torch.rand(25, 10, generator=g) < 0.35
    u, i = dense.nonzero().T
    w = torch.rand(len(u), generator=g) + 0.5
    x = interaction_matrix(u, i, w, 25, 10)
    y = torch.randn(10, 3, generator=g)
    reg, alpha = 0.3, 4.0
    got = solve_side(*csr_parts(x), y, reg, alpha, budget=budget)
    weights = torch.zeros(25, 10)
    weights[u, i] = w
    conf, pref = 1 + alpha * weights, dense.float()
    systems = [(y.T @ torch.diag(conf[r]) @ y + reg * torch.eye(3), y.T @ (conf[r] * pref[r])) for r in range(25)]
    expected = torch.stack([torch.linalg.solve(a, b) for a, b in systems])
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)
    full = (conf * (pref - got @ y.T) ** 2).sum() + reg * (got.pow(2).sum() + y.pow(2).sum())
    assert objective(*csr_parts(x), got, y, reg, alpha) == pytest.approx(float(full) / 250, rel=1e-5)


def test_als_backends_fit_the_same_objective() -> None:
    pytest.importorskip("implicit")
    x, _ = _tiny_matrix(seed=2, users=60, items=20)
    losses = {}
    for backend in ("torch", "implicit"):
        torch.manual_seed(0)
        model = ALS(60, 20, factors=4, regularization=0.5, alpha=5.0, iterations=15, backend=backend)
        losses[backend] = model.fit_closed_form(x)["loss"]
    # the same objective, different solvers (exact vs conjugate gradient) and starting points
    assert losses["torch"] == pytest.approx(losses["implicit"], rel=0.1)


def _run(tmp_path: Path, name: str, *overrides: str) -> dict[str, float]:
    recipe = overrides[0] if overrides and "=" not in overrides[0] else None
    train_run(*overrides[1 if recipe else 0 :], root=tmp_path, name=name, recipe=recipe)
    summary = json.loads((tmp_path / name / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["global_step"] == 1 and summary["epochs"] <= 1
    assert (tmp_path / name / "checkpoints" / "best.ckpt").is_file()
    return summary["metrics"]


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_closed_form_models_fit_in_one_step_and_beat_popularity(tmp_path: Path, cli: Any) -> None:
    ease = _run(tmp_path, "ease", "model=recsys.ease", "model.l2=50", "task.ease_l2=[50]", *EASY)
    assert ease["test/recall@10"] > 1.5 * ease["test/pop_recall@10"]
    # the EASE baseline is the same model on the same split
    assert ease["test/recall@10"] == pytest.approx(ease["test/ease_recall@10"], abs=1e-6)
    assert ease["val/ndcg@10"] == pytest.approx(ease["val/ease_ndcg@10"], abs=1e-6)
    als = _run(tmp_path, "als", "model=recsys.als", "model.factors=16", "model.regularization=1", *EASY)
    assert als["test/recall@10"] > 1.5 * als["test/pop_recall@10"]
    assert als["train/loss"] > 0
    # the fitted model is in the checkpoint; EASE gets the users' items back from the data
    r = cli("recommend", str(tmp_path / "ease"), "--user", "7", "--k", "3", "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert len(out["recommendations"]) == 3 and out["recommendations"][0]["score"] > 0


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_ease_chooses_its_l2_and_dropout_on_validation(tmp_path: Path, cli: Any) -> None:
    grid = "[1,30,1000]"
    # with plain EASE's grid, the model chooses the same l2 as the baseline (NDCG@10 on the val users)
    m = _run(tmp_path, "grid", "model=recsys.ease", f"model.l2={grid}", f"task.ease_l2={grid}", *EASY)
    assert m["train/dropout"] == 0.0 and m["train/l2"] in (1.0, 30.0, 1000.0)
    assert m["val/ndcg@10"] == pytest.approx(m["val/ease_ndcg@10"], abs=1e-6)
    assert m["test/recall@10"] == pytest.approx(m["test/ease_recall@10"], abs=1e-6)
    # EDLAE pairs are tried too; the run reports the pair it kept
    pairs = _run(tmp_path, "pairs", "model=recsys.ease", "model.l2=[1,1000]", "model.dropout=[0,0.5]", *EASY)
    assert (pairs["train/l2"], pairs["train/dropout"]) in {(1.0, 0.0), (1.0, 0.5), (1000.0, 0.0), (1000.0, 0.5)}
    # without validation users the first of each list is used
    x, _ = _tiny_matrix()
    model = EASE(30, 12, l2=[3.0, 50.0], dropout=[0.3, 0.0])
    assert model.fit_closed_form(x)["l2"] == 3.0 and model.dropout == 0.3
    torch.testing.assert_close(model.weight.detach(), ease_weights(gram(x), 3.0, 0.3))
    assert cli("run", "model=recsys.ease", "model.l2=[]", *EASY, "--dry-run").returncode == 2


def test_choose_pair_keeps_plain_ease_unless_another_pair_is_clearly_better() -> None:
    g = torch.Generator().manual_seed(0)
    plain = torch.rand(2000, generator=g)
    noise = 0.05 * torch.randn(2000, generator=g)
    noise -= noise.mean()  # standard error of a paired difference: 0.05 / sqrt(2000) = 0.0011
    clearly, barely = plain + 0.02 + noise, plain + 0.0005 + noise  # better by 18 and by 0.45 standard errors
    assert barely.mean() > plain.mean()
    assert choose_pair({(200.0, 0.0): plain, (50.0, 0.0): plain - 0.1, (200.0, 0.5): clearly}) == (200.0, 0.5)
    assert choose_pair({(200.0, 0.0): plain, (50.0, 0.0): plain - 0.1, (200.0, 0.5): barely}) == (200.0, 0.0)
    assert choose_pair({(200.0, 0.3): plain, (200.0, 0.5): plain + 1e-4}) == (200.0, 0.5)  # no plain pair: the best
    assert choose_pair({(200.0, 0.0): plain - 0.1, (50.0, 0.0): plain}) == (50.0, 0.0)


def test_ease_baseline_is_skipped_above_the_item_cap(caplog: pytest.LogCaptureFixture) -> None:
    src = Synthetic(num_users=50, num_items=30, interactions_per_user=8, drift=0.0)
    with caplog.at_level(logging.INFO, logger="engine.recsys"):
        assert not EaseBaseline([10.0], max_items=20).fit(src, 10)
    assert "EASE baseline skipped: 30 items > task.ease_max_items=20" in caplog.text
    baseline = EaseBaseline([1.0, 10.0, 100.0], max_items=100)
    assert baseline.fit(src, 10) and baseline.l2 in (1.0, 10.0, 100.0)
    assert baseline.scores(torch.tensor([0, 3])).shape == (2, 30)


def test_movielens_recipe_on_a_ratings_dat_file(tmp_path: Path) -> None:
    # MovieLens 1M layout: '::'-separated user::item::rating::timestamp, no header
    g = torch.Generator().manual_seed(0)
    lines = []
    for user in range(1, 61):  # two tastes: items 1-20 or 21-40; every third rating is a 2
        liked = torch.randperm(20, generator=g)[:12] + (1 if user % 2 else 21)
        for t, item in enumerate(liked.tolist()):
            lines.append(f"{user}::{item}::{2 if t % 3 == 0 else 5}::{978300000 + 10 * t}")
    path = tmp_path / "ratings.dat"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    src = Interactions(path=str(path), min_rating=4)
    assert src.facts["num_interactions"] == 60 * 8 and src.facts["num_users"] == 60
    # the recipe's fallback (EASE, fitted in closed form) with SASRec trained briefly (test_sequential.py: more)
    quick = [
        "trainer.max_epochs=1",
        "trainer.check_val_every_n_epoch=1",
        "model.dim=8",
        "fallback.l2=[10.0,100.0]",
        "fallback.dropout=[0.0,0.5]",
    ]
    train_run(f"data.path={path}", *quick, root=tmp_path, name="ml", recipe="recsys/movielens")
    m = json.loads((tmp_path / "ml" / "summary.json").read_text())["metrics"]
    assert "test/ease_recall@10" in m and m["test/recall@10"] > 0 and m["train/fallback_l2"] in (10.0, 100.0)


def test_synthetic_earlier_data_is_reachable_and_defaults_are_harder() -> None:
    old = Synthetic(
        num_users=50,
        num_items=30,
        interactions_per_user=8,
        popularity_exponent=1.0,
        activity_sigma=0.6,
        drift=0.0,
        seed=1,
    )  # the defaults before issue 23: the same draws, the same data
    assert old.all.row(0).tolist() == [0, 1, 2, 9, 12, 18, 24] and old.all.row(1).tolist() == [5, 17, 20, 24]
    assert old.facts["num_interactions"] == 380 and int(old.train.indices.sum()) == 4213
    legacy = {"interactions_per_user": 40, "popularity_exponent": 1.0, "activity_sigma": 0.6, "drift": 0.0}
    before = Synthetic(num_users=600, num_items=300, seed=1, **legacy)
    new = Synthetic(num_users=600, num_items=300, seed=1)
    assert torch.equal(new.train.indices, Synthetic(num_users=600, num_items=300, seed=1).train.indices)

    def head(src: Synthetic) -> float:  # share of the interactions the top 10 % of items take
        pop = src.item_popularity.sort(descending=True).values
        return float(pop[:30].sum() / pop.sum())

    assert head(new) > head(before) + 0.05  # a heavier popularity head
    counts, counts_before = new.all.counts().float(), before.all.counts().float()
    assert counts.mean() < counts_before.mean() and counts.median() < 0.75 * counts.mean()  # sparser, lighter users
