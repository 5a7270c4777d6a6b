"""Metrics against hand-computed values, the losses, and each model's full-ranking scorer."""

from __future__ import annotations

import math

import pytest
import torch
from engine_recsys.losses import BCE, BPR, SampledSoftmax
from engine_recsys.metrics import RankingMetrics
from engine_recsys.models import MF, NeuMF, TwoTower


def test_metrics_match_a_hand_checked_example() -> None:
    # user 0: items 0..5 scored 0.9 .. 0.4; item 0 was seen (excluded), items 2 and 5 are held out.
    #   ranking without item 0: 1, 2, 3, 4, 5 -> hits at ranks 2 and 5.
    # user 1: held-out item 0 is ranked last of 6 -> no hit at 3 or 5.
    scores = torch.tensor([[0.9, 0.8, 0.7, 0.6, 0.5, 0.4], [0.1, 0.9, 0.8, 0.7, 0.6, 0.5]])
    seen = torch.zeros(2, 6, dtype=torch.bool)
    seen[0, 0] = True
    target = torch.zeros(2, 6, dtype=torch.bool)
    target[0, [2, 5]] = True
    target[1, 0] = True
    m = RankingMetrics([3, 5])
    m.update(scores, seen, target)
    got = {k: float(v) for k, v in m.compute().items()}
    l2 = math.log2
    # user 0 @3: 1 of 2 found; DCG = 1/log2(3); IDCG = 1 + 1/log2(3)
    ndcg3 = (1 / l2(3)) / (1 + 1 / l2(3))
    # user 0 @5: both found at ranks 2 and 5; DCG = 1/log2(3) + 1/log2(6)
    ndcg5 = (1 / l2(3) + 1 / l2(6)) / (1 + 1 / l2(3))
    assert got["recall@3"] == pytest.approx((0.5 + 0) / 2)
    assert got["ndcg@3"] == pytest.approx((ndcg3 + 0) / 2)
    assert got["hit@3"] == pytest.approx((1 + 0) / 2)
    assert got["recall@5"] == pytest.approx((1 + 0) / 2)
    assert got["ndcg@5"] == pytest.approx((ndcg5 + 0) / 2)
    assert got["hit@5"] == pytest.approx(0.5)


def test_seen_items_are_excluded_from_the_ranking() -> None:
    # The held-out item 3 is ranked 4th overall, but 1st once the three seen items are removed.
    scores = torch.tensor([[0.9, 0.8, 0.7, 0.6, 0.1]])
    seen = torch.tensor([[True, True, True, False, False]])
    target = torch.tensor([[False, False, False, True, False]])
    with_mask, without = RankingMetrics([1]), RankingMetrics([1])
    with_mask.update(scores, seen, target)
    without.update(scores, None, target)
    assert float(with_mask.compute()["hit@1"]) == 1.0
    assert float(without.compute()["hit@1"]) == 0.0


def test_metrics_agree_with_torchmetrics_retrieval() -> None:
    from torchmetrics.functional.retrieval import retrieval_normalized_dcg, retrieval_recall

    g = torch.Generator().manual_seed(0)
    scores = torch.randn(16, 30, generator=g)
    target = torch.rand(16, 30, generator=g) < 0.15
    target[:, 0] = True
    m = RankingMetrics([5])
    m.update(scores, None, target)
    got = m.compute()
    recall = torch.stack([retrieval_recall(scores[i], target[i], top_k=5) for i in range(16)]).mean()
    ndcg = torch.stack([retrieval_normalized_dcg(scores[i], target[i], top_k=5) for i in range(16)]).mean()
    assert float(got["recall@5"]) == pytest.approx(float(recall), abs=1e-5)
    assert float(got["ndcg@5"]) == pytest.approx(float(ndcg), abs=1e-5)


def test_losses() -> None:
    scores = torch.tensor([[2.0, 0.0], [0.0, 1.0]])
    expected = (
        -torch.nn.functional.logsigmoid(torch.tensor(2.0)) - torch.nn.functional.logsigmoid(torch.tensor(-1.0))
    ) / 2
    assert float(BPR()(scores, torch.ones(2))) == pytest.approx(float(expected))
    # weights: only the first row counts
    assert float(BPR()(scores, torch.tensor([1.0, 0.0]))) == pytest.approx(
        float(-torch.nn.functional.logsigmoid(torch.tensor(2.0)))
    )
    ce = torch.nn.functional.cross_entropy(scores.detach(), torch.zeros(2, dtype=torch.long))
    assert float(SampledSoftmax()(scores, torch.ones(2))) == pytest.approx(float(ce))
    sp = torch.nn.functional.softplus
    bce = (
        (sp(torch.tensor(-2.0)) + sp(torch.tensor(0.0))) / 2 + (sp(torch.tensor(0.0)) + sp(torch.tensor(1.0))) / 2
    ) / 2
    assert float(BCE()(scores, torch.ones(2))) == pytest.approx(float(bce))
    with pytest.raises(ValueError, match="at least 2 column"):
        BPR()(torch.randn(4, 1), torch.ones(4))


@pytest.mark.parametrize(
    "model",
    [
        MF(12, 9, factors=4),
        NeuMF(12, 9, factors=4, mlp_layers=[8, 6, 4], score_chunk=5),
        TwoTower(12, 9, user_feature_dim=3, item_feature_dim=2, embedding_dim=4, hidden=[8], out_dim=4),
    ],
    ids=["mf", "ncf", "two_tower"],
)
def test_score_all_equals_pairwise_scores(model: torch.nn.Module) -> None:
    if isinstance(model, TwoTower):
        model.set_features(torch.randn(12, 3), torch.randn(9, 2))
    model.eval()
    users = torch.tensor([0, 3, 7, 11, 5, 2])
    x = torch.cat([users[:, None], torch.arange(9).expand(6, -1)], 1)
    with torch.no_grad():
        pairwise = model(x)
        full = model.score_all(users)
    assert full.shape == (6, 9)
    torch.testing.assert_close(full, pairwise, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(model(users), full)


@pytest.mark.filterwarnings("ignore:You are trying to `self.log")  # no Trainer here: logging is skipped
def test_task_training_step_with_l2_and_side_feature_mismatch() -> None:
    from engine_recsys.task import RankingTask

    from engine import ConfigError

    model = MF(10, 8, factors=4)
    task = RankingTask(model, BPR(), lambda p: torch.optim.SGD(p, lr=0.1), k=[3], l2=0.5)
    x = torch.tensor([[0, 1, 2, 3], [4, 5, 6, 7]])
    plain = BPR()(model(x), torch.ones(2))
    with_l2 = task.training_step((x, torch.ones(2)), 0)
    assert float(with_l2.detach()) == pytest.approx(float((plain + 0.5 * model.regularization(x)).detach()))
    with pytest.raises(ConfigError, match="cannot score all items"):
        RankingTask(torch.nn.Linear(2, 2), BPR(), lambda p: torch.optim.SGD(p, lr=0.1))
    tower = TwoTower(10, 8, user_feature_dim=3, item_feature_dim=2)
    with pytest.raises(ConfigError, match="side features have shape"):
        tower.set_features(torch.zeros(10, 5), None)
