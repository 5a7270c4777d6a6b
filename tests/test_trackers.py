"""``trainer.logger``: experiment trackers through Lightning's loggers, the run's CSV and summary kept beside them,
the resolved config logged as hyperparameters."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

import engine

TINY = ["model=mlp", "model.hidden=[8]", "data=synthetic", "data.num_samples=200", "trainer.max_epochs=1"]


def test_tensorboard_and_csv_get_the_resolved_config_as_hyperparameters(train: Any, tmp_path: Path) -> None:
    result = train(*TINY, "trainer.logger=tensorboard", root=tmp_path)
    hparams = yaml.safe_load((result.run_dir / "tb" / "hparams.yaml").read_text())
    assert hparams["model"]["hidden"] == [8] and hparams["trainer"]["max_epochs"] == 1
    assert (
        yaml.safe_load((result.run_dir / "csv" / "0" / "hparams.yaml").read_text())["data"]["name"] == "core.synthetic"
    )
    assert (result.run_dir / "csv" / "0" / "metrics.csv").is_file() and result.summary["status"] == "completed"


def test_mlflow_and_wandb_offline(train: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("mlflow")  # both in the `test` extra: CI fails rather than skip (conftest.py)
    pytest.importorskip("wandb")
    store = tmp_path / "mlruns"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store.as_uri())
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")  # MLflow 3 keeps its file store in maintenance mode
    monkeypatch.setenv("WANDB_MODE", "offline")
    monkeypatch.setenv("WANDB_SILENT", "true")
    result = train(*TINY, "trainer.logger=[mlflow,wandb]", root=tmp_path / "runs", name="tracked")
    assert (result.run_dir / "csv" / "0" / "metrics.csv").is_file() and result.summary["status"] == "completed"
    import mlflow

    client = mlflow.MlflowClient(tracking_uri=store.as_uri())
    (run,) = client.search_runs([client.get_experiment_by_name("engine").experiment_id])
    assert run.info.run_name == "tracked" and run.data.params["model/hidden"] == "[8]"
    assert "test/accuracy" in run.data.metrics and any(k.startswith("val/") for k in run.data.metrics)
    assert list((result.run_dir / "wandb").glob("offline-run-*/run-*.wandb")), "W&B's offline run in the run directory"


def test_an_unknown_logger_is_refused_with_the_choices(cli: Any) -> None:
    out = cli("run", *TINY, "trainer.logger=mlfow", "--dry-run")
    assert out.returncode == 2 and "did you mean 'mlflow'?" in out.stderr
    out = cli("run", *TINY, "trainer.logger=[csv,tensorboard]", "--dry-run")
    assert out.returncode == 0 and yaml.safe_load(out.stdout)["trainer"]["logger"] == ["csv", "tensorboard"]
    assert engine.plan(engine.compose(overrides=TINY)).config["trainer"].get("logger") is None
