"""Synthetic interactions as MovieLens files, to run ``recsys/movielens`` end to end without real data.

    .venv/bin/python plugins/recsys/bench/movielens_files.py OUT_DIR [--sets default sparse dense]
    OMP_WAIT_POLICY=PASSIVE .venv/bin/python bench/recipe_matrix.py recsys/movielens \\
        --set data.path=OUT_DIR/default/u.data

Writes each synthetic set of ``synthetic_table.py`` (``--seed``, default 0) as ``OUT_DIR/SET/u.data``: tab-separated
``user item rating timestamp``, no header, the MovieLens 100k layout. Every generated interaction is a
"liked" rating (4 or 5); each user also gets disliked ratings (1 to 3) of popular items they did not
pick, up to half as many as their liked ones (repeats of a liked item dropped), at random times, so the
recipe's ``data.min_rating=4`` has something to drop, as on MovieLens (where about 45 % of ratings are
below 4). After that filter the interactions and their order are the synthetic set's, so the recipe's
figures can be read beside ``synthetic_table.py``'s.

The sets of ``synthetic_table.py`` carry little order: tastes drift over four stages of a history,
but within a stage the order is random, and items have no release dates. Real rating logs are
ordered: users rate in sessions, genre after genre, films soon after their release, over a window
of the calendar. The ``ml100k`` set (MovieLens 100k's size: 943 users, 1,682 items, ~55k ratings >= 4)
draws histories in time order with these tendencies (``recsys.synthetic``'s ``genre_stickiness``,
``release_spread``, ``novelty``, ``drift``; `engine_recsys.sequential_data` documents each); the
strengths are guesses at plausible behaviour, not fitted to MovieLens nor chosen for one model.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import torch
from engine_recsys.synthetic import Synthetic
from synthetic_table import SETS as STATIC_SETS

from engine import parse_override

#: name: (what it is, data overrides of recsys.synthetic)
SETS: dict[str, tuple[str, list[str]]] = {
    **STATIC_SETS,
    "ml100k": (
        "MovieLens 100k size, histories in time order: genre runs 0.5, releases over 80 % of the calendar, "
        "novelty 2, drift 0.5",
        [
            "data.num_users=943",
            "data.num_items=1682",
            "data.interactions_per_user=58",
            "data.activity_sigma=0.9",
            "data.genre_stickiness=0.5",
            "data.release_spread=0.8",
            "data.novelty=2.0",
            "data.drift=0.5",
        ],
    ),
}


def write_u_data(overrides: list[str], path: Path, seed: int = 0) -> dict[str, int]:
    """One synthetic set (``data.k=v`` overrides of ``recsys.synthetic``) as a MovieLens ``u.data``."""
    kwargs = {keys[-1]: value for keys, value in map(parse_override, overrides)}
    source = Synthetic(seed=seed, side_features=False, **kwargs)
    users, items, times = source.events
    g = torch.Generator().manual_seed(seed + 1)
    liked = 4 + torch.randint(0, 2, (len(users),), generator=g)
    # disliked ratings: popular items (popularity of the liked ones), up to half as many, at random times
    n_bad = len(users) // 2
    pop = torch.bincount(items, minlength=source.num_items).float() + 1
    bad_users = users[torch.randint(0, len(users), (n_bad,), generator=g)]
    bad_items = torch.multinomial(pop, n_bad, replacement=True, generator=g)
    seen = set(zip(users.tolist(), items.tolist(), strict=True))
    keep = torch.tensor([(u, i) not in seen for u, i in zip(bad_users.tolist(), bad_items.tolist(), strict=True)])
    bad_users, bad_items = bad_users[keep], bad_items[keep]
    bad_times = torch.rand(len(bad_users), generator=g, dtype=torch.float64) * float(times.max())
    all_u = torch.cat([users, bad_users]) + 1  # MovieLens ids start at 1
    all_i = torch.cat([items, bad_items]) + 1
    all_r = torch.cat([liked, 1 + torch.randint(0, 3, (len(bad_users),), generator=g)])
    all_t = (torch.cat([times, bad_times]) + 8.8e8).long()  # seconds around 1998, like ml-100k
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", encoding="utf-8") as fh:
        for row in zip(all_u.tolist(), all_i.tolist(), all_r.tolist(), all_t.tolist(), strict=True):
            fh.write("\t".join(map(str, row)) + "\n")
    return {"liked": len(users), "disliked": len(bad_users)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("out", help="directory to write SET/u.data into")
    ap.add_argument("--sets", nargs="+", default=list(STATIC_SETS), choices=list(SETS))
    ap.add_argument("--seed", type=int, default=0, help="seed of the synthetic data (default 0)")
    args = ap.parse_args()
    for name in args.sets:
        path = Path(args.out) / name / "u.data"
        counts = write_u_data(SETS[name][1], path, args.seed)
        print(f"{path}: {counts['liked']:,} ratings >= 4, {counts['disliked']:,} below 4")


if __name__ == "__main__":
    main()
