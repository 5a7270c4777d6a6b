"""What users see: logs in a non-terminal run, report panels, and the messages of issue 25."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from engine.testing import run_cli

ROOT = Path(__file__).resolve().parents[1]
TINY = ["model=mlp", "data=synthetic", "data.num_samples=200", "model.hidden=[8]", "trainer.max_epochs=2"]

MODEL = """
from engine import Component, Recipe, hookimpl

@hookimpl
def engine_models():
    return [Component("net", "engine._builtins.models:MLP", "an MLP under another name")]

@hookimpl
def engine_recipes():
    return [Recipe("demo", {"model": "net", "data": "synthetic", "trainer": {"max_epochs": 1}})]
"""


# --------------------------------------------------------------------------- logs


@pytest.mark.slow
def test_a_run_in_a_log_prints_one_line_an_epoch_and_no_lightning_tips(tmp_path: Path) -> None:
    out = run_cli("run", *TINY, f"run.dir={tmp_path}", "run.name=r")  # stdout and stderr are pipes
    assert out.returncode == 0, out.stderr
    both = out.stdout + out.stderr
    lines = [x for x in out.stderr.splitlines() if x.startswith("epoch ")]
    assert [x.split()[1] for x in lines] == ["1/2", "2/2"]
    assert all("train/loss" in x and "val/accuracy" in x for x in lines)
    for noise in ("litlogger", "💡", "GPU available", "\r"):
        assert noise not in both, noise
    assert "test/accuracy *" in out.stdout and "run directory:" in out.stdout  # the end-of-run table stays


@pytest.mark.slow
def test_quiet_prints_the_results_only_and_verbose_everything(tmp_path: Path) -> None:
    quiet = run_cli("run", *TINY, f"run.dir={tmp_path}", "run.name=q", "--quiet")
    assert quiet.returncode == 0, quiet.stderr
    assert "epoch 1/2" not in quiet.stderr and "Trainable params" not in quiet.stdout + quiet.stderr
    assert "test/accuracy *" in quiet.stdout
    loud = run_cli("run", *TINY, f"run.dir={tmp_path}", "run.name=v", "-v")
    assert loud.returncode == 0, loud.stderr
    assert "GPU available" in loud.stdout + loud.stderr and "epoch 1/2  step" not in loud.stderr


def test_a_long_epoch_gets_progress_lines(tmp_path: Path) -> None:
    import lightning as L

    from engine._run.callbacks import EpochLines

    class Clock:
        now = 0.0

        def __call__(self) -> float:
            self.now += 20.0  # every reading 20 s later
            return self.now

    lines = EpochLines(every_s=30.0)
    lines._clock = Clock()
    trainer = L.Trainer(max_steps=10, logger=False, enable_checkpointing=False, enable_progress_bar=False)
    printed: list[str] = []
    lines._print = lambda t, where, prefixes: printed.append(where)  # type: ignore[method-assign]
    lines.on_train_epoch_start(trainer, None)  # type: ignore[arg-type]
    for _ in range(4):
        lines.on_train_batch_end(trainer)
    assert printed == ["step 0/10", "step 0/10"]  # at 40 s and 80 s of a 4-batch epoch


# --------------------------------------------------------------------------- report


def _rows(n: int, **series: object) -> list[dict[str, float]]:
    return [{"step": float(i), **{k: float(f(i)) for k, f in series.items()}} for i in range(n)]  # type: ignore[operator]


# --------------------------------------------------------------------------- plugin management


def test_a_disabled_plugins_recipe_and_component_say_how_to_enable_it(plugin_site) -> None:
    plugin_site("acme", MODEL)
    assert run_cli("plugins", "disable", "acme").returncode == 0
    for args in (["run", "acme/demo", "--dry-run"], ["run", "model=acme.net", "data=synthetic", "--dry-run"]):
        out = run_cli(*args)
        assert out.returncode == 2, out.stderr
        assert "the plugin 'acme' (engine-acme) is disabled" in out.stderr, out.stderr
        assert "`engine plugins enable acme`" in out.stderr and "Traceback" not in out.stderr
    once = run_cli("--disable", "acme", "run", "acme/demo", "--dry-run")
    assert "drop --disable acme" in once.stderr


def test_uninstalling_a_plugin_forgets_its_disabled_setting(plugin_site, tmp_path: Path) -> None:
    site = plugin_site("acme", MODEL)
    info = next(site.glob("engine_acme-*.dist-info"))
    (info / "RECORD").write_text(f"engine_acme_plugin.py,,\n{info.name}/METADATA,,\n{info.name}/RECORD,,\n")
    assert run_cli("plugins", "disable", "acme").returncode == 0
    out = run_cli("plugins", "uninstall", "acme")
    assert out.returncode == 0, out.stderr
    assert "disabled setting and recorded failure are forgotten" in out.stdout
    settings = json.loads((Path(os.environ["ENGINE_HOME"]) / "settings.json").read_text())
    assert "acme" not in settings.get("disabled", [])


# --------------------------------------------------------------------------- small correctness items


def test_a_plugin_glob_lists_its_recipes_too(plugin_site) -> None:
    plugin_site("timeseries", MODEL)
    out = run_cli("components", "list", "timeseries.*")
    assert out.returncode == 0, out.stderr
    assert "timeseries.net" in out.stdout and "timeseries/demo" in out.stdout


def test_dry_run_names_the_data_facts_and_the_parameters_they_fill() -> None:
    out = run_cli("run", "model=mlp", "data=synthetic", "model.out_features=4", "--dry-run")
    assert out.returncode == 0, out.stderr
    facts = next(x for x in out.stderr.splitlines() if x.startswith("# data facts of core.synthetic"))
    assert "in_features" in facts and "num_classes" in facts
    filled = next(x for x in out.stderr.splitlines() if x.startswith("# filled from them:"))
    assert "model.in_features" in filled and "task.num_classes" in filled
    assert "model.out_features" not in filled  # set by the user: the fact does not override it
    assert "in_features" not in out.stdout.split("model:")[1].split("loss:")[0]


@pytest.mark.slow
def test_a_shape_mismatch_shows_the_datas_facts(tmp_path: Path) -> None:
    out = run_cli("run", "model=mlp", "data=synthetic", "model.in_features=3", f"run.dir={tmp_path}")
    assert out.returncode == 2
    assert "the model does not fit the data" in out.stderr and "in_features=16" in out.stderr


def test_the_readme_links_every_documentation_page() -> None:
    readme = (ROOT / "README.md").read_text()
    linked = set(re.findall(r"\]\((docs/[^)#]+\.md)", readme))
    pages = {p.relative_to(ROOT).as_posix() for p in (ROOT / "docs").rglob("*.md")}
    assert pages - linked == set()
    assert linked - pages == set()


def test_the_docs_build_strictly(tmp_path: Path) -> None:
    mkdocs = Path(sys.executable).with_name("mkdocs")
    if not mkdocs.exists():
        pytest.skip("mkdocs is not installed (pip install -e '.[docs]')")
    out = subprocess.run(
        [str(mkdocs), "build", "--strict", "-q", "-d", str(tmp_path / "site")],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-3000:]


def test_results_table_shows_every_evaluated_split_and_metrics_are_stored_sanely() -> None:
    """Issue 37 item 4: a plugin's ``heldout/`` metrics (recipes' declared targets) are in the end-of-run table, and
    a float32 metric at the top of its range is stored as 1.0, not 1.0000001 (macro F1: ten classes weighted 0.1f)."""
    import torch

    from engine._cli.run import results_table
    from engine._run.runs import to_jsonable
    from engine.tasks import score

    summary = {
        "metrics": {"train/loss": 0.3, "val/wer": 0.2, "test/wer": 0.1, "heldout/wer": 0.25, "epoch": 3},
        "best_metrics": {"val/wer": 0.15, "test/wer": 0.1, "heldout/wer": 0.25},
        "primary_metric": {"name": "test/wer"},
        "best_checkpoint": "checkpoints/best.ckpt",
        "best_step": 40,
    }
    rows = [line.split() for line in results_table(summary).lines()[1:]]
    assert [r[0] for r in rows] == ["test/wer", "heldout/wer", "val/wer"]
    assert rows[1] == ["heldout/wer", "-", "0.2500"]  # measured on the best checkpoint, as test/ is
    perfect = score(torch.eye(10) * 10, torch.arange(10), "classification", names=["f1"])
    assert perfect == {"f1": 1.0}
    f1 = torch.tensor(1.0000001192092896, dtype=torch.float32)
    assert to_jsonable({"test/f1": f1}) == {"test/f1": 1.0} and to_jsonable(torch.tensor(0.1234567891)) == 0.1234568
