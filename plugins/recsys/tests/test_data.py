"""The data sources: file layouts, splits, negatives, bad input."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from engine_recsys.files import Interactions
from engine_recsys.synthetic import Synthetic

from engine import ConfigError


def _items_of(source: Interactions, split: str, user: str) -> list[str]:
    ds = source.datasets()[split]
    u = source.user_index(user)
    pos = int(torch.nonzero(ds.users == u).flatten()[0])
    _, (_, target) = ds[pos]
    return [source.item_ids[i] for i in torch.nonzero(target).flatten().tolist()]


def test_movielens_u_data_layout(u_data: Path) -> None:
    src = Interactions(path=str(u_data))
    facts = src.facts
    assert facts["num_users"] == 4 and facts["num_items"] == 6 and facts["num_interactions"] == 12
    assert src.user_ids == ["22", "186", "196", "244"]  # numeric ids in natural order
    # leave-last-out by timestamp, not file order: user 196's latest is item 346, the one before 51
    assert _items_of(src, "test", "196") == ["346"]
    assert _items_of(src, "val", "196") == ["51"]
    # user 22 has two interactions: the last goes to test, none to val
    assert _items_of(src, "test", "22") == ["51"]
    assert src.user_index("22") not in src.datasets()["val"].users.tolist()
    assert facts["num_train"] == 12 - 4 - 3


def test_movielens_ratings_csv_layout_and_min_rating(ratings_csv: Path) -> None:
    src = Interactions(path=str(ratings_csv), min_rating=3.5)
    assert src.facts["num_interactions"] == 6  # user 1 rated everything below 3.5
    assert sorted(src.user_ids) == ["2", "3"]


def test_explicit_columns_and_separator(tmp_path: Path) -> None:
    path = tmp_path / "events.tsv"
    path.write_text("who;what;when\na;x;1\na;y;2\nb;x;3\nb;z;4\na;z;5\n", encoding="utf-8")
    src = Interactions(path=str(path), user_col="who", item_col="what", timestamp_col="when", sep=";")
    assert src.facts["num_users"] == 2 and src.facts["num_items"] == 3
    assert _items_of(src, "test", "a") == ["z"]


def test_missing_required_column_is_clear(tmp_path: Path) -> None:
    path = tmp_path / "bad.csv"
    path.write_text("customer,rating\n1,5\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="no item column found among customer, rating") as err:
        Interactions(path=str(path))
    assert "data.item_col" in str(err.value)
    with pytest.raises(ConfigError, match="no column 'product'"):
        Interactions(path=str(path), item_col="product")


def test_temporal_split_needs_timestamps(tmp_path: Path) -> None:
    path = tmp_path / "pairs.csv"
    path.write_text("user,item\n1,a\n1,b\n2,a\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="no timestamp column"):
        Interactions(path=str(path), split="temporal")


def test_duplicates_are_removed_with_a_note_or_rejected(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    path = tmp_path / "dups.csv"
    path.write_text("user,item,timestamp\n1,a,1\n1,b,2\n1,a,3\n2,a,1\n2,b,2\n2,c,3\n", encoding="utf-8")
    src = Interactions(path=str(path))
    assert "1 duplicate (user, item) interaction(s) removed" in caplog.text
    assert src.facts["duplicates_removed"] == 1 and src.facts["num_interactions"] == 5
    assert _items_of(src, "test", "1") == ["a"]  # the later (user 1, a) is kept: it is the last
    with pytest.raises(ConfigError, match=r"duplicate .* user '1', item 'a'"):
        Interactions(path=str(path), duplicates="error")


def test_empty_and_header_only_files(tmp_path: Path) -> None:
    empty = tmp_path / "empty.csv"
    empty.write_text("", encoding="utf-8")
    with pytest.raises(ConfigError, match="empty"):
        Interactions(path=str(empty))
    header = tmp_path / "header.csv"
    header.write_text("user,item\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="no interactions"):
        Interactions(path=str(header))
    with pytest.raises(ConfigError, match="not found"):
        Interactions(path=str(tmp_path / "nope.csv"))


def test_bad_rating_value_names_the_row(tmp_path: Path) -> None:
    path = tmp_path / "r.csv"
    path.write_text("user,item,rating\n1,a,5\n1,b,great\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="row 2: rating 'great'"):
        Interactions(path=str(path))


def test_parquet(tmp_path: Path) -> None:
    pa = pytest.importorskip("pyarrow")
    import pyarrow.parquet as pq

    path = tmp_path / "r.parquet"
    pq.write_table(pa.table({"user_id": [1, 1, 2, 2, 2], "item_id": [7, 8, 7, 9, 8], "ts": [1, 2, 1, 2, 3]}), path)
    src = Interactions(path=str(path), timestamp_col="ts")
    assert src.facts["num_users"] == 2 and src.facts["num_items"] == 3
    assert _items_of(src, "test", "2") == ["8"]


def test_synthetic_is_seeded_long_tailed_and_negatives_avoid_seen() -> None:
    a = Synthetic(num_users=300, num_items=1000, interactions_per_user=20, num_negatives=5, seed=3)
    b = Synthetic(num_users=300, num_items=1000, interactions_per_user=20, num_negatives=5, seed=3)
    assert torch.equal(a.train.indices, b.train.indices)
    pop = a.item_popularity.sort(descending=True).values
    assert pop[:100].sum() > 0.3 * pop.sum()  # long tail: the top 10% of items take over 30% of interactions
    assert pop[0] > 10 * pop[500]  # the most popular item is seen 10x more than the median one
    x, y = a.datasets()["train"].__getitems__(list(range(256)))
    assert x.shape == (256, 7) and y.shape == (256,)
    seen = a.train.dense(x[:, 0], a.num_items)
    assert not seen.gather(1, x[:, 2:]).any()  # sampled negatives are never training positives
    assert seen.gather(1, x[:, 1:2]).all()
    facts = a.facts
    assert facts["user_feature_dim"] == 8 and facts["item_feature_dim"] == 18


def test_temporal_split_orders_by_time() -> None:
    src = Synthetic(num_users=200, num_items=100, interactions_per_user=10, split="temporal", seed=1)
    n = src.facts["num_interactions"]
    assert abs(src.facts["num_train"] - 0.8 * n) <= 1
    with pytest.raises(ConfigError, match="sum below 1"):
        Synthetic(num_users=50, num_items=20, split="temporal", val_fraction=0.6, test_fraction=0.5)
