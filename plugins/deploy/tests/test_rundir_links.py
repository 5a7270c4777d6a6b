"""``engine deploy`` writes into the run directory only: a ``deploy`` link (or one inside it) leading out of the
run is refused, and nothing is written through it."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

import pytest


@pytest.mark.parametrize("link", ["deploy", "deploy/torchscript/model.pt"])
def test_deploy_never_writes_through_a_link_leading_out(mlp_run: Path, tmp_path: Path, cli: Any, link: str) -> None:
    run = Path(shutil.copytree(mlp_run, tmp_path / "copy"))
    shutil.rmtree(run / "deploy", ignore_errors=True)  # what other tests deployed
    outside = tmp_path / "outside"
    outside.mkdir()
    (run / link).parent.mkdir(parents=True, exist_ok=True)
    target = outside if link == "deploy" else outside / "model.pt"
    if link != "deploy":
        target.write_bytes(b"not yours")
    (run / link).symlink_to(target)
    out = cli("deploy", str(run), "--target", "torchscript", "--no-timing")
    errors = [line for line in out.stderr.splitlines() if line.startswith("error:")]
    assert out.returncode == 2 and len(errors) == 1 and "Traceback" not in out.stderr, out.stderr[-2000:]
    assert f"{run / link} is a link to {target}, outside the run directory" in errors[0], errors[0]
    assert sorted(p.name for p in outside.iterdir()) == ([] if link == "deploy" else ["model.pt"])
    assert link == "deploy" or target.read_bytes() == b"not yours"


def test_deploy_writes_into_a_link_to_a_directory_of_the_same_run(mlp_run: Path, tmp_path: Path, cli: Any) -> None:
    run = Path(shutil.copytree(mlp_run, tmp_path / "copy"))
    shutil.rmtree(run / "deploy", ignore_errors=True)  # what other tests deployed
    (run / "exports").mkdir()
    (run / "deploy").symlink_to("exports")  # inside the run: fine
    out = cli("deploy", str(run), "--target", "torchscript", "--no-timing")
    assert out.returncode == 0, out.stderr[-2000:]
    assert (run / "exports" / "torchscript" / "manifest.json").is_file()
