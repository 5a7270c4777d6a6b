"""Run directories two processes cannot share or corrupt, and links that cannot lead out of them.

A new run claims its directory exclusively (two runs started at the same instant get two
directories); a run being trained or resumed holds a lock (``.lock``: pid and host) that a second
resume is refused on; a failed resume keeps the run's records; a link whose real path is outside
the run directory is refused before anything is read through it or written through it.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

import engine
import engine.runs
from engine.testing import full_disk, one_error, snapshot, train_run

TINY = ["model=mlp", "model.hidden=[8]", "data=synthetic", "data.num_samples=120", "trainer.max_epochs=2"]


@pytest.fixture(scope="module")
def good(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A completed tiny run (two epochs)."""
    root = tmp_path_factory.mktemp("rundirs")
    return train_run(*TINY, root=root, name="good").run_dir


def _copy(good: Path, tmp_path: Path, name: str = "copy") -> Path:
    return Path(shutil.copytree(good, tmp_path / name, symlinks=True))


# --------------------------------------------------------------------------- links


def test_a_best_ckpt_link_leading_out_is_not_evaluated(good: Path, tmp_path: Path) -> None:
    run = _copy(good, tmp_path)
    summary = json.loads((run / "summary.json").read_text())
    summary.update(status="interrupted")
    summary.pop("best_checkpoint")  # an interrupted run records no best: checkpoints/best.ckpt is looked up
    (run / "summary.json").write_text(json.dumps(summary))
    outside = tmp_path / "outside.ckpt"
    shutil.copy(run / "checkpoints" / "best.ckpt", outside)
    (run / "checkpoints" / "best.ckpt").unlink()
    (run / "checkpoints" / "best.ckpt").symlink_to(outside)
    with pytest.raises(engine.EngineError, match=r"best\.ckpt is a link to .*outside the run directory"):
        engine.open_run(run).task()


def test_a_recorded_path_that_is_a_link_says_so(good: Path, tmp_path: Path) -> None:
    run = _copy(good, tmp_path)
    outside = tmp_path / "outside.ckpt"
    shutil.move(run / "checkpoints" / "best.ckpt", outside)
    (run / "checkpoints" / "best.ckpt").symlink_to(outside)
    run_view = engine.runs.Run(run, {}, {}, json.loads((run / "summary.json").read_text()))
    with pytest.raises(engine.EngineError, match=r"summary\.json names 'checkpoints/best\.ckpt', a link to") as refused:
        run_view.checkpoint()
    assert str(outside) in refused.value.message


def test_a_link_to_a_file_of_the_same_run_is_fine(good: Path, tmp_path: Path) -> None:
    run = _copy(good, tmp_path)
    (run / "checkpoints" / "best.ckpt").unlink()
    (run / "checkpoints" / "best.ckpt").symlink_to("last.ckpt")  # relative: inside the run, moved with it
    assert engine.open_run(run).checkpoint("best") == run / "checkpoints" / "best.ckpt"
    engine.open_run(run).task()


@pytest.mark.parametrize("link", ["checkpoints/last.ckpt", "csv"])
def test_a_resume_never_reads_or_writes_through_a_link_leading_out(good: Path, tmp_path: Path, cli, link) -> None:
    run = _copy(good, tmp_path)
    outside = tmp_path / "outside"
    outside.mkdir()
    target = outside / Path(link).name
    shutil.move(run / link, target)
    (run / link).symlink_to(target)
    if link == "checkpoints/last.ckpt":
        (run / "checkpoints" / "best.ckpt").unlink()  # the link is the newest checkpoint: it would be resumed from
    before = snapshot(outside)
    out = cli("run", "--resume", str(run), "trainer.max_epochs=3")
    one_error(out, f"{run / link} is a link to {target}", "outside the run directory")
    assert snapshot(outside) == before, "a resume wrote through a link"
    assert not (run / ".lock").exists()


# --------------------------------------------------------------------------- two runs at the same instant

CLAIM = """
import sys, time
from pathlib import Path
import engine
from engine._run.runner import shared_run_dir

root, sync, tag, rounds, named = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3], int(sys.argv[4]), sys.argv[5]
for k in range(rounds):
    extra = [f"run.name=same-{k}"] if named == "named" else []
    plan = engine.plan(engine.compose(None, (), ["model=mlp", "data=synthetic", f"run.dir={root}", *extra]))
    (sync / f"ready-{k}-{tag}").touch()
    while not (sync / f"go-{k}").exists():
        time.sleep(0.0002)
    try:
        said = str(shared_run_dir(plan))
    except engine.EngineError as exc:
        said = "refused: " + exc.message
    (sync / f"done-{k}-{tag}").write_text(said)
"""


def _race(tmp_path: Path, named: str, rounds: int = 4) -> list[list[str]]:
    """Two processes released together ``rounds`` times, each creating a new run's directory: what each got."""
    sync, root = tmp_path / "sync", tmp_path / "runs"
    sync.mkdir()
    script = tmp_path / "claim.py"
    script.write_text(CLAIM)
    procs = [
        subprocess.Popen([sys.executable, str(script), str(root), str(sync), tag, str(rounds), named])
        for tag in ("a", "b")
    ]
    results = []
    try:
        for k in range(rounds):
            deadline = time.time() + 120
            while not all((sync / f"ready-{k}-{t}").exists() for t in "ab"):
                assert all(p.poll() is None for p in procs) and time.time() < deadline, "a claiming process ended"
                time.sleep(0.01)
            (sync / f"go-{k}").touch()
            while not all((sync / f"done-{k}-{t}").exists() for t in "ab"):
                assert time.time() < deadline, "a claiming process hung"
                time.sleep(0.01)
            results.append([(sync / f"done-{k}-{t}").read_text() for t in "ab"])
    finally:
        for p in procs:
            p.wait(timeout=60)
    return results


def test_two_new_runs_started_at_the_same_instant_get_two_directories(tmp_path: Path) -> None:
    results = _race(tmp_path, "auto")
    for a, b in results:
        assert a != b and Path(a).is_dir() and Path(b).is_dir(), results
        assert [p.name for p in Path(a).iterdir()] == [".lock"], "claimed before anything is written, and locked"


def test_two_runs_of_the_same_name_at_the_same_instant_one_is_refused(tmp_path: Path) -> None:
    for pair in _race(tmp_path, "named"):
        refused = [r for r in pair if r.startswith("refused:")]
        assert len(refused) == 1 and "already exists" in refused[0], pair


def test_a_failed_build_leaves_no_directory_and_no_lock(tmp_path: Path, monkeypatch) -> None:
    from engine._run import trainer

    def refuse(*args, **kwargs):
        raise engine.EngineError("no trainer today")

    monkeypatch.setattr(trainer, "build_trainer", refuse)
    with pytest.raises(engine.EngineError, match="no trainer today"):
        train_run(*TINY, root=tmp_path, name="never")
    assert not (tmp_path / "never").exists()


# --------------------------------------------------------------------------- resume: lock, records


def test_resuming_a_run_another_live_process_trains_is_refused(good: Path, tmp_path: Path, cli) -> None:
    run = _copy(good, tmp_path)
    holder = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        host = socket.gethostname()
        summary = json.loads((run / "summary.json").read_text())
        (run / "summary.json").write_text(json.dumps({**summary, "status": "running", "pid": holder.pid, "host": host}))
        (run / ".lock").write_text(json.dumps({"pid": holder.pid, "host": host}))
        before = snapshot(run)
        out = cli("run", "--resume", str(run), "trainer.max_epochs=3")
        one_error(out, f"run {run} is being trained by pid {holder.pid} on {host}; wait or stop it")
        assert snapshot(run) == before
    finally:
        holder.kill()
        holder.wait()


def test_a_lock_left_by_a_killed_process_does_not_block_a_resume(good: Path, tmp_path: Path, cli) -> None:
    run = _copy(good, tmp_path)
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (run / ".lock").write_text(json.dumps({"pid": dead.pid, "host": socket.gethostname()}))
    out = cli("run", "--resume", str(run), "trainer.max_epochs=3")
    assert out.returncode == 0, out.stderr[-2000:]
    assert json.loads((run / "summary.json").read_text())["epochs"] == 3
    assert not (run / ".lock").exists(), "the lock is released at the end"


RESUME = """
import sys, time
from pathlib import Path
import engine
from engine.runs import read_config

run, go = Path(sys.argv[1]), Path(sys.argv[2])
# seconds of training: the later one comes while the first holds the lock, however loaded the machine
plan = engine.plan(engine.compose(None, (), ["trainer.max_epochs=120"], base=read_config(run)))
(go.parent / f"ready-{sys.argv[3]}").touch()
while not go.exists():
    time.sleep(0.0002)
try:
    engine.train(plan, resume=run)
    print("trained")
except engine.EngineError as exc:
    print("refused: " + exc.message)
"""


@pytest.mark.slow
def test_two_resumes_at_the_same_instant_one_is_refused(good: Path, tmp_path: Path) -> None:
    run = _copy(good, tmp_path)
    script, go = tmp_path / "resume.py", tmp_path / "go"
    script.write_text(RESUME)
    procs = [
        subprocess.Popen([sys.executable, str(script), str(run), str(go), tag], stdout=subprocess.PIPE, text=True)
        for tag in "ab"
    ]
    deadline = time.time() + 120
    while not all((tmp_path / f"ready-{tag}").exists() for tag in "ab"):
        assert all(p.poll() is None for p in procs) and time.time() < deadline, "a resuming process ended"
        time.sleep(0.01)
    go.touch()
    said = sorted(p.communicate(timeout=300)[0].strip().splitlines()[-1] for p in procs)
    assert said[1] == "trained" and said[0].startswith(f"refused: run {run} is being trained by pid"), said
    assert json.loads((run / "summary.json").read_text())["epochs"] == 120


def test_a_failed_resume_keeps_the_config_of_a_completed_run(good: Path, tmp_path: Path, cli, monkeypatch) -> None:
    run = _copy(good, tmp_path)
    before = (run / "config.yaml").read_bytes(), (run / "facts.json").read_bytes()
    out = cli("run", "--resume", str(run), "optimizer.eps=-2", "trainer.max_epochs=4")  # fails as fit starts
    assert out.returncode != 0, out.stderr[-2000:]
    import torch

    def fail(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch.optim.AdamW, "__init__", fail)  # the optimizer fails as the resumed fit starts
    out = cli("run", "--resume", str(run), "trainer.max_epochs=4")
    assert out.returncode == 2, out.stderr[-2000:]
    assert ((run / "config.yaml").read_bytes(), (run / "facts.json").read_bytes()) == before
    summary = json.loads((run / "summary.json").read_text())
    assert summary["status"] == "completed" and summary["epochs"] == 2
    assert not (run / ".lock").exists()


def test_a_resumed_run_records_its_new_config_once_it_trains(good: Path, tmp_path: Path, cli) -> None:
    run = _copy(good, tmp_path)
    out = cli("run", "--resume", str(run), "trainer.max_epochs=3")
    assert out.returncode == 0, out.stderr[-2000:]
    assert engine.runs.read_config(run)["trainer"]["max_epochs"] == 3


# --------------------------------------------------------------------------- a full disk


def test_a_full_disk_on_resume_names_the_file(good: Path, tmp_path: Path, cli) -> None:
    run = _copy(good, tmp_path)
    before = snapshot(run)
    with pytest.MonkeyPatch.context() as patch:
        full_disk(patch, run)
        one_error(cli("run", "--resume", str(run), "trainer.max_epochs=3"), "No space left on device", f"{run}/")
    assert snapshot(run) == before


def test_a_full_disk_at_a_resumes_end_names_the_file(good: Path, tmp_path: Path, cli) -> None:
    run = _copy(good, tmp_path)
    with pytest.MonkeyPatch.context() as patch:
        full_disk(patch, run, when=lambda data: data.startswith(b'{\n  "status": "completed"'))  # the final summary
        one_error(
            cli("run", "--resume", str(run), "trainer.max_epochs=3"),
            "No space left on device",
            str(run / "summary.json"),
        )


def test_write_text_atomic_names_the_file_and_keeps_the_old_one(tmp_path: Path) -> None:
    file = tmp_path / "out" / "notes.txt"
    engine.runs.write_text_atomic(file, "old")
    with pytest.MonkeyPatch.context() as patch:
        full_disk(patch, tmp_path)
        with pytest.raises(OSError, match="No space left") as failed:
            engine.runs.write_text_atomic(file, "new")
    assert failed.value.filename == str(file)
    assert file.read_text() == "old" and os.listdir(file.parent) == ["notes.txt"]


def test_inside_refuses_every_way_out(tmp_path: Path) -> None:
    run = tmp_path / "run"
    (run / "sub").mkdir(parents=True)
    (tmp_path / "secret").write_text("x")
    (run / "file").write_text("y")
    (run / "sub" / "up").symlink_to(tmp_path)
    (run / "same").symlink_to("file")
    assert engine.runs.inside(run, "same") == run / "same"
    for parts in (("..", "secret"), (str(tmp_path / "secret"),), ("sub", "up", "secret"), ("sub",), ()):
        with pytest.raises(engine.EngineError, match="outside the run directory"):
            engine.runs.inside(run, *parts)
    with pytest.raises(engine.EngineError, match=f"{run / 'sub' / 'up'} is a link to {tmp_path}, outside"):
        engine.runs.inside(run, "sub")


def test_a_lock_that_cannot_be_written_is_not_left_behind(tmp_path: Path, monkeypatch) -> None:
    from engine._run import runs

    def full(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(runs.json, "dump", full)
    with pytest.raises(OSError, match="No space left"):
        runs.lock_run(tmp_path)
    assert not (tmp_path / ".lock").exists(), "an empty lock would refuse every later run of the directory"


def test_a_checkpoint_is_streamed_to_disk_not_copied_in_memory(tmp_path: Path, monkeypatch) -> None:
    """Saving holds no second copy of the checkpoint (issue 36: a 124 M model's 1.5 GB checkpoint, weights and Adam
    moments, was serialised into a BytesIO first, raising a full fine-tuning run's peak memory by as much); a full
    disk still names the file."""
    import tracemalloc

    import torch

    from engine._run.checkpoints import AtomicCheckpointIO

    state = {"state_dict": {"w": torch.zeros(4_000_000)}}  # 16 MB
    tracemalloc.start()
    AtomicCheckpointIO().save_checkpoint(state, tmp_path / "a.ckpt")
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 4_000_000, peak  # Python-side buffers only: far less than the tensor
    assert torch.load(tmp_path / "a.ckpt", weights_only=True)["state_dict"]["w"].shape == (4_000_000,)
    full_disk(monkeypatch, tmp_path)
    with pytest.raises(OSError) as err:
        AtomicCheckpointIO().save_checkpoint(state, tmp_path / "b.ckpt")
    assert err.value.filename == str(tmp_path / "b.ckpt") and not list(tmp_path.glob("*.tmp*"))


_WEIGHTS_MEMORY = """
import resource, sys, torch
from pathlib import Path
from engine._run.runner import _save_weights
ckpt = Path(sys.argv[1])
torch.save({"state_dict": {"w": torch.ones(1_000_000)}, "optimizer_states": [torch.ones(50_000_000)]}, ckpt)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
_save_weights(None, type("C", (), {"best_model_path": str(ckpt)})(), ckpt.parent)
print((resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) // 1024)
"""


def test_model_safetensors_is_written_without_loading_the_optimizer_state(tmp_path: Path) -> None:
    """At a run's end the best checkpoint's weights become model.safetensors; its optimizer state (200 MB here, Adam's
    moments are twice the weights) is not read into memory, nor are the weights copied (issue 36: +2 GB at 124 M)."""
    out = subprocess.run(
        [sys.executable, "-c", _WEIGHTS_MEMORY, str(tmp_path / "best.ckpt")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr[-2000:]
    assert int(out.stdout.split()[-1]) < 100, out.stdout  # MiB of peak RSS added
    from engine.runs import load_weights_file

    assert load_weights_file(tmp_path / "model.safetensors")["w"].shape == (1_000_000,)
