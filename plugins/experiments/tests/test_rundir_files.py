"""``evaluate`` and ``report`` read and write a run directory's own files only: a link leading out of it is
refused (nothing is read or written through it), and a full disk is one line naming the file, exit 2, with the
previous report kept whole."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest

from engine.testing import full_disk, one_error, snapshot


@pytest.fixture(scope="module")
def good(tmp_path_factory: pytest.TempPathFactory, tiny_run: Any) -> Path:
    return Path(tiny_run(tmp_path_factory.mktemp("files"), "good", "trainer.max_epochs=2").run_dir)


def _copy(good: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(good, tmp_path / "copy", symlinks=True))


def test_an_interrupted_runs_best_ckpt_link_leading_out_is_not_evaluated(good: Path, tmp_path: Path, cli) -> None:
    run = _copy(good, tmp_path)
    summary = json.loads((run / "summary.json").read_text())
    summary["status"] = "interrupted"
    del summary["best_checkpoint"]
    (run / "summary.json").write_text(json.dumps(summary))
    outside = tmp_path / "elsewhere.ckpt"
    shutil.move(run / "checkpoints" / "best.ckpt", outside)
    (run / "checkpoints" / "best.ckpt").symlink_to(outside)
    one_error(cli("evaluate", str(run)), f"{run / 'checkpoints' / 'best.ckpt'} is a link to {outside}", "outside")


def test_report_never_writes_through_a_link_leading_out(good: Path, tmp_path: Path, cli: Any) -> None:
    run = _copy(good, tmp_path)
    shutil.rmtree(run / "report", ignore_errors=True)
    outside = tmp_path / "outside"
    outside.mkdir()
    (run / "report").symlink_to(outside)
    one_error(cli("report", str(run)), f"{run / 'report'} is a link to {outside}, outside the run directory")
    assert not list(outside.iterdir())


def test_a_full_disk_is_one_line_naming_the_file_and_keeps_the_previous_report(
    good: Path, tmp_path: Path, cli: Any
) -> None:
    run = _copy(good, tmp_path)
    assert cli("report", str(run)).returncode == 0
    before = snapshot(run / "report")
    assert set(before) == {"curves.png", "report.md"}
    with pytest.MonkeyPatch.context() as patch:
        full_disk(patch, run / "report")
        out = cli("report", str(run))
    one_error(out, "No space left on device", str(run / "report" / "curves.png"))
    assert snapshot(run / "report") == before
    assert sorted(p.name for p in (run / "report").iterdir()) == ["curves.png", "report.md"]
