"""What a run prints through a pipe and with ``-q`` (issue 34, item 8): no Lightning boxes or deprecation
warnings, epochs counted from 1 everywhere, step lines with their total, counters as integers."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from engine.testing import run_cli, train_run

TINY = ["model=mlp", "data=synthetic", "data.num_samples=200", "model.hidden=[8]", "trainer.max_epochs=2"]
#: What must not reach a log: Lightning's model summary box, deprecation warnings, the logger version, resume notes.
NOISE = ("Trainable params", "| Name", "DeprecationWarning", "FutureWarning", "v_num", "`weights_only` was not set")
RESUME_NOISE = ("Restored all states from the checkpoint",)


@pytest.mark.slow
def test_a_piped_run_and_its_resume_print_no_boxes_or_warnings_and_step_totals(tmp_path: Path) -> None:
    out = run_cli("run", *TINY, f"run.dir={tmp_path}", "run.name=r")  # stdout and stderr are pipes
    assert out.returncode == 0, out.stderr
    both = out.stdout + out.stderr
    for noise in NOISE:
        assert noise not in both, noise
    lines = [x.split() for x in out.stderr.splitlines() if x.startswith("epoch ")]
    assert [x[1] for x in lines] == ["1/2", "2/2"]  # 1-based, as the progress bar now counts too
    steps = [x[3] for x in lines]
    total = steps[-1].split("/")[1]
    assert all(s.endswith(f"/{total}") for s in steps) and steps[-1] == f"{total}/{total}"  # step 5/10, 10/10
    again = run_cli("run", "--resume", str(tmp_path / "r"), "trainer.max_epochs=3")  # one more epoch
    assert again.returncode == 0, again.stderr
    assert [x.split()[1] for x in again.stderr.splitlines() if x.startswith("epoch ")] == ["3/3"]
    for noise in (*NOISE, *RESUME_NOISE):
        assert noise not in again.stdout + again.stderr, noise
    quiet = run_cli("run", *TINY, f"run.dir={tmp_path}", "run.name=q", "-q")
    assert quiet.returncode == 0, quiet.stderr
    for noise in (*NOISE, "epoch 1/2"):
        assert noise not in quiet.stdout + quiet.stderr, noise


def test_the_progress_bar_counts_epochs_from_1_and_shows_no_logger_version(tmp_path: Path) -> None:
    import lightning as L
    from lightning.pytorch.loggers import CSVLogger

    from engine._run.progress import RichBar, TQDMBar, epoch_label

    for bar in (RichBar(), TQDMBar()):
        trainer = L.Trainer(max_epochs=3, logger=CSVLogger(tmp_path, version=0), callbacks=[bar])
        assert epoch_label(trainer) == "1/3"
        bar.setup(trainer, L.LightningModule(), stage="fit")
        assert "v_num" not in bar.get_metrics(trainer, L.LightningModule())
        if isinstance(bar, RichBar):
            assert bar._get_train_description(0).strip() == "Epoch 1/3"


def test_counters_print_as_integers_and_metrics_with_4_decimals() -> None:
    from engine.console import format_metric

    assert format_metric(7975.0) == "7975" and format_metric(40.0) == "40"  # env steps, episodes
    assert format_metric(0.5) == "0.5000" and format_metric(1.0) == "1.0000" and format_metric(0.0) == "0.0000"
    assert format_metric(None) == "-" and format_metric(7) == "7"


def test_short_epochs_log_the_train_loss_and_learning_rate_within_the_epoch(tmp_path: Path) -> None:
    run = train_run(*TINY, root=tmp_path)  # 3 batches an epoch; Lightning's default interval is 50 steps
    with (Path(run.run_dir) / "csv" / "0" / "metrics.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    steps = {r["step"] for r in rows if r.get("train/loss")}
    rates = {r["step"] for r in rows if any(r.get(k) for k in r if k.startswith("lr-"))}
    every = {str(step) for step in range(run.summary["global_step"])}
    assert steps == every and rates == every  # every step of the two epochs


def test_a_step_line_of_an_endless_dataset_has_no_total() -> None:
    from engine._run.callbacks import EpochLines

    class Endless:  # an RL experience stream: Lightning estimates -1 or inf steps
        max_steps, global_step = -1, 7
        estimated_stepping_batches = -1

    assert EpochLines._step(Endless()) == "step 7"  # type: ignore[arg-type]
    Endless.estimated_stepping_batches = float("inf")  # type: ignore[assignment]
    assert EpochLines._step(Endless()) == "step 7"  # type: ignore[arg-type]
    Endless.estimated_stepping_batches = 40  # type: ignore[assignment]
    assert EpochLines._step(Endless()) == "step 7/40"  # type: ignore[arg-type]
