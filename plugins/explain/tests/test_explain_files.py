"""``engine explain`` writes into the run's ``explain/`` only (never through a link leading out of the run), and a
full disk is one line naming where, exit 2, with every file already there kept whole."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from engine.testing import full_disk, one_error, snapshot


@pytest.fixture
def sample(tmp_path: Path) -> Path:
    file = tmp_path / "one.json"
    file.write_text(json.dumps([0.0, 2.0, 0.0, 0.0, -2.0, 0.0, 0.0, 0.0]))
    return file


def test_explain_never_writes_through_a_link_leading_out(table_run: Path, sample: Path, cli: Any, tmp_path) -> None:
    run = Path(shutil.copytree(table_run, tmp_path / "copy"))
    shutil.rmtree(run / "explain", ignore_errors=True)
    outside = tmp_path / "outside"
    outside.mkdir()
    (run / "explain").symlink_to(outside)
    out = cli("explain", str(run), str(sample), "--steps", "4")
    one_error(out, f"{run / 'explain'} is a link to {outside}, outside the run directory")
    assert not list(outside.iterdir())


def test_a_full_disk_is_one_line_naming_where_and_keeps_what_was_there(
    table_run: Path, sample: Path, cli: Any, tmp_path: Path
) -> None:
    out_dir = tmp_path / "ig"
    first = cli("explain", str(table_run), str(sample), "--steps", "4", "--out", str(out_dir))
    assert first.returncode == 0, first.stderr[-2000:]
    before = snapshot(out_dir)
    assert {"attributions.json", "attributions.csv"} <= set(before)
    with pytest.MonkeyPatch.context() as patch:
        full_disk(patch, tmp_path)
        out = cli("explain", str(table_run), str(sample), "--steps", "4", "--out", str(out_dir))
    one_error(out, "No space left on device", str(out_dir))
    assert snapshot(out_dir) == before, "a failed explanation destroyed the previous one"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ig", "one.json"], "temporary files left behind"
