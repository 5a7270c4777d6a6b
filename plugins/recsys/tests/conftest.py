"""Tiny interaction files in the layouts the interactions source recognises; one torch thread."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(autouse=True, scope="session")
def _threads(one_thread: None) -> None:
    """The models here are tiny: one torch thread is fastest, and the machine's cores are shared."""


# user item rating timestamp, MovieLens 100k u.data layout (tab-separated, no header).
U_DATA = """\
196\t242\t3\t881250949
186\t302\t3\t891717742
196\t377\t1\t878887116
244\t51\t2\t880606923
196\t346\t1\t884182806
186\t346\t5\t886397596
244\t242\t4\t880606900
186\t474\t4\t884182900
244\t302\t5\t880607000
196\t51\t4\t881251000
22\t377\t1\t878887116
22\t51\t5\t878887200
"""

# MovieLens 20M/25M ratings.csv layout.
RATINGS_CSV = """\
userId,movieId,rating,timestamp
1,31,2.5,1260759144
1,1029,3.0,1260759179
1,1061,3.0,1260759182
1,1129,2.0,1260759185
2,10,4.0,835355493
2,17,5.0,835355681
2,39,5.0,835355604
2,31,4.5,835355700
3,1029,4.0,1298861675
3,10,3.5,1298861800
"""


@pytest.fixture
def u_data(tmp_path: Path) -> Path:
    path = tmp_path / "u.data"
    path.write_text(U_DATA, encoding="utf-8")
    return path


@pytest.fixture
def ratings_csv(tmp_path: Path) -> Path:
    path = tmp_path / "ratings.csv"
    path.write_text(RATINGS_CSV, encoding="utf-8")
    return path
