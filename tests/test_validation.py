"""Nothing ``--dry-run`` calls valid fails later: ranges, finite floats, the Trainer's own checks, run names,
resolvers that read the environment, and a model too big for memory; every refusal is one short line."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

QUIET = ["trainer.enable_progress_bar=false", "trainer.enable_model_summary=false"]
TINY = ["model=mlp", "model.hidden=[8]", "data=synthetic", "data.num_samples=200", "trainer.max_epochs=1", *QUIET]

#: Each passed --dry-run, then failed at build or training (exit 1, a failed run directory) or trained to chance.
BAD = [
    ("optimizer.eps=-2", "optimizer.eps"),
    ("optimizer.betas=[2,3]", "optimizer.betas"),
    ("optimizer.lr=inf", "optimizer.lr"),
    ("optimizer.lr=.inf", "optimizer.lr"),
    ("optimizer.lr=-.inf", "optimizer.lr"),
    ("optimizer=sgd optimizer.momentum=.nan", "optimizer.momentum"),
    ("seed=-1", "seed"),
    ("seed=99999999999", "seed"),
    ("trainer.accumulate_grad_batches=0", "trainer.accumulate_grad_batches"),
    ("run.dir=~nosuchuser-t33/x", "run.dir"),
    ("model.hidden=[0]", "model.hidden"),
    ("model.hidden=[8,-1]", "model.hidden"),
    ("data.class_sep=nan", "data.class_sep"),
    ("data.class_sep=.nan", "data.class_sep"),
    ("data.informative=0", "data.informative"),
    ("data.val_fraction=1.5", "data.val_fraction"),
    ("trainer.gradient_clip_val=-1", "trainer.gradient_clip_val"),
    ("scheduler=cosine scheduler.warmup_steps=-3", "scheduler.warmup_steps"),
    ("scheduler=reduce_on_plateau scheduler.factor=2", "scheduler.factor"),
    ("checkpoint.every_n_epochs=0", "checkpoint.every_n_epochs"),
    # what lightning.Trainer refuses when it is constructed, refused at --dry-run too
    ("trainer.max_epochs=-2", "trainer.max_epochs"),
    ("trainer.max_steps=-5", "trainer.max_steps"),
    ("trainer.limit_train_batches=1.5", "trainer.limit_train_batches"),
    ("trainer.limit_val_batches=-1", "trainer.limit_val_batches"),
    ("trainer.devices=0", "trainer.devices"),
    ("trainer.num_nodes=0", "trainer.num_nodes"),
    ("trainer.fast_dev_run=-1", "trainer.fast_dev_run"),
    ("trainer.gradient_clip_algorithm=sideways", "trainer.gradient_clip_algorithm"),
    ("trainer.check_val_every_n_epoch=0", "trainer.check_val_every_n_epoch"),
    ("trainer.val_check_interval=0.5 trainer.check_val_every_n_epoch=null", "trainer.val_check_interval"),
    ("trainer.reload_dataloaders_every_n_epochs=-1", "trainer.reload_dataloaders_every_n_epochs"),
    ("trainer.num_sanity_val_steps=-2", "trainer.num_sanity_val_steps"),
    ("trainer.barebones=true", "trainer.barebones"),
    # a run directory outside run.dir
    ("run.name=../escape", "run.name"),
    ("run.name=/tmp/t33-absolute", "run.name"),
    ("run.name=a/b", "run.name"),
    ("run.name=..", "run.name"),
    # a config may not copy the environment into config.yaml
    ("run.name=${oc.env:HOME}", "oc.env"),
    (("run.name=${ oc.env:HOME}",), "oc.env"),
    ("run.name=${oc.decode:'$${oc.env:HOME}'}", "oc.decode"),
    ("run.name=${oc.decode:abc}", "oc.decode"),
]


def _items(overrides: str | tuple[str, ...]) -> list[str]:
    return list(overrides) if isinstance(overrides, tuple) else overrides.split()


def _error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error:")]


@pytest.mark.parametrize(("overrides", "key"), BAD, ids=[" ".join(_items(o)) for o, _ in BAD])
def test_refused_at_dry_run(tmp_path: Path, cli, overrides: str | tuple[str, ...], key: str) -> None:
    out = cli("run", *TINY, f"run.dir={tmp_path / 'runs'}", *_items(overrides), "--dry-run")
    assert out.returncode == 2, (out.returncode, out.stderr[-1500:])
    errors = _error_lines(out.stderr)
    assert len(errors) == 1 and key in errors[0], out.stderr
    assert "Traceback" not in out.stderr and len(out.stderr) < 600, out.stderr
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize("overrides", ["trainer.accumulate_grad_batches=0", "optimizer.eps=-2", "seed=-1"])
def test_refused_before_a_run_directory_exists(tmp_path: Path, cli, overrides: str) -> None:
    out = cli("run", *TINY, f"run.dir={tmp_path / 'runs'}", overrides)
    assert out.returncode == 2 and len(_error_lines(out.stderr)) == 1, out.stderr[-1500:]
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize(
    "overrides",
    [
        "optimizer.betas=[0.5,0.9] optimizer.eps=0",
        "seed=4294967295",
        "trainer.max_epochs=-1 trainer.max_steps=2",
        "trainer.limit_train_batches=3 trainer.limit_val_batches=0.5",
        "trainer.gradient_clip_val=0.5 trainer.gradient_clip_algorithm=value",
        "trainer.val_check_interval=2 trainer.check_val_every_n_epoch=null",
        "run.name=my-run.v2",
        "run.name=nan",
        "run.dir=~/runs",
        "run.name=${model.name}-${seed}",
    ],
)
def test_ranges_let_valid_values_through(cli, overrides: str) -> None:
    out = cli("run", *TINY, *overrides.split(), "--dry-run")
    assert out.returncode == 0, out.stderr


def test_an_environment_secret_never_reaches_the_config(cli, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("T33_SECRET", "hunter2")
    out = cli("run", *TINY, "run.name=${oc.env:T33_SECRET}", "--dry-run")
    assert out.returncode == 2 and "hunter2" not in out.stdout + out.stderr
    assert "run.name" in out.stderr and "T33_SECRET" in out.stderr, out.stderr  # says how to pass it instead


def test_a_shared_config_file_cannot_smuggle_an_environment_secret(
    tmp_path: Path, cli, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("T33_SECRET", "hunter2")
    shared = tmp_path / "shared.yaml"
    shared.write_text("optimizer:\n  param_groups:\n    - params: 'net.*'\n      lr: ${oc.env:T33_SECRET,0.1}\n")
    out = cli("run", *TINY, "-c", str(shared), f"run.dir={tmp_path / 'runs'}")
    assert out.returncode == 2 and "hunter2" not in out.stdout + out.stderr, out.stderr
    assert "optimizer.param_groups[0].lr" in out.stderr and not (tmp_path / "runs").exists(), out.stderr


def test_a_value_built_by_interpolation_is_not_resolved_again(cli) -> None:
    out = cli("run", *TINY, "run.dir=${oc.select:nowhere,x}", "--dry-run")
    assert out.returncode == 0 and "dir: x" in out.stdout, out.stderr


def test_a_non_finite_float_is_called_one(cli) -> None:
    out = cli("run", *TINY, "optimizer.lr=inf", "--dry-run")
    assert out.returncode == 2 and "'inf' (str)" not in out.stderr and "finite" in out.stderr, out.stderr


def test_a_model_too_big_for_memory_is_refused_before_allocating(tmp_path: Path) -> None:
    """``model.hidden=[1e9]``: ~92 GB of weights. Refused from its shapes (built on the meta device), before a byte
    is allocated; the process runs with its address space capped so that allocating fails fast instead."""
    import resource

    def cap() -> None:  # 16 GB of address space: torch and Lightning load, the model does not
        resource.setrlimit(resource.RLIMIT_AS, (16 << 30, 16 << 30))

    env = {**os.environ, "ENGINE_HOME": str(tmp_path / "home"), "ENGINE_CACHE_DIR": str(tmp_path / "cache")}
    args = [*TINY, "model.hidden=[1000000000]", f"run.dir={tmp_path / 'runs'}"]
    code = "import sys; from engine._cli.main import main; sys.exit(main(sys.argv[1:]))"
    out = subprocess.run(
        [sys.executable, "-c", code, "run", *args], capture_output=True, text=True, env=env, preexec_fn=cap, timeout=300
    )
    assert out.returncode == 2, out.stderr[-1500:]
    errors = _error_lines(out.stderr)
    assert len(errors) == 1 and "core.mlp" in errors[0] and "available" in errors[0], out.stderr[-1500:]
    assert not (tmp_path / "runs").exists()


def test_the_size_estimate_lets_a_model_that_fits_through(tmp_path: Path, cli) -> None:
    out = cli("run", *TINY, f"run.dir={tmp_path}", "run.name=fits")
    assert out.returncode == 0, out.stderr[-1500:]
