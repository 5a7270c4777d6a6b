"""Training techniques: init_from / freeze / param_groups, distillation, pruning, ensembles, reports.

Tiny synthetic runs (an MLP on 300 samples, a few epochs); one teacher run is shared by the module.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import torch

import engine
from engine.cli import main
from engine.config import compose, validate
from engine.errors import ConfigError, EngineError
from engine.registry import clear_registries
from engine.runner import run
from engine.testing import run_cli

TINY = [
    "model=mlp",
    "data=synthetic",
    "data.num_samples=300",
    "data.num_features=6",
    "data.num_classes=3",
    "model.hidden=[16]",
    "trainer.max_epochs=3",
    "trainer.enable_progress_bar=false",
    "trainer.enable_model_summary=false",
    "trainer.log_every_n_steps=1",
]


def config(*overrides: str, root: Path | None = None, name: str = "run") -> dict[str, Any]:
    reg = engine.get_registry()
    where = [f"run.dir={root}", f"run.name={name}"] if root else []
    return validate(compose(reg, None, [], [*TINY, *where, *overrides]), reg)


def train(root: Path, name: str, *overrides: str) -> Any:
    reg = engine.get_registry()
    return run(config(*overrides, root=root, name=name), reg)


def weights(run_dir: Path) -> dict[str, torch.Tensor]:
    state = torch.load(run_dir / "checkpoints" / "best.ckpt", map_location="cpu", weights_only=True)["state_dict"]
    return {k.removeprefix("model."): v for k, v in state.items() if k.startswith("model.")}


@pytest.fixture(scope="module")
def teacher(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("teacher")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("ENGINE_CACHE_DIR", str(root / "cache"))
        mp.setenv("ENGINE_HOME", str(root / "home"))
        clear_registries()
        return train(root, "teacher", "model.hidden=[32]", "trainer.max_epochs=4").run_dir


# --------------------------------------------------------------------------- config (torch-free)


def test_techniques_validate_without_torch(tmp_path: Path, teacher: Path) -> None:
    """Every technique is one line of config, validated at --dry-run without importing torch."""
    items = [
        *TINY,
        f"model.init_from={teacher}",
        "model.init_skip=[net.5.*]",
        "model.init_mismatch=reinit",
        "model.freeze=[net.1.*]",
        "model.unfreeze_at_epoch=1",
        "optimizer.param_groups=[{params: 'net.1.*', lr: 1e-4}]",
        "prune.amount=0.5",
        "trainer.precision=bf16-mixed",
        "trainer.gradient_clip_val=1.0",
        "trainer.accumulate_grad_batches=4",
        "early_stopping.patience=3",
        "scheduler=reduce_on_plateau",
        "scheduler.patience=2",
    ]
    code = (
        "import sys\nfrom engine.cli import main\n"
        f"rc = main(['run', *{items!r}, '--dry-run'])\n"
        "assert rc == 0, rc\nassert 'torch' not in sys.modules, 'torch was imported'\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    for line in ("init_from:", "freeze:", "param_groups:", "amount: 0.5", "precision: bf16-mixed", "patience: 3"):
        assert line in done.stdout
    teach = subprocess.run(
        [
            sys.executable,
            "-c",
            f"import sys\nfrom engine.cli import main\nrc = main(['run', *{TINY!r}, "
            f"'task=distill', 'task.teacher={teacher}', '--dry-run'])\nassert rc == 0 and 'torch' not in sys.modules",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert teach.returncode == 0, teach.stderr


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["model.init_skip=[head.*]"], "model.init_skip needs model.init_from"),
        (["model.init_from=/nowhere/run"], "model.init_from: /nowhere/run does not exist"),
        (["model.unfreeze_at_epoch=2"], "model.unfreeze_at_epoch needs model.freeze"),
        (["model.unfreeze_at_epoch=soon"], r"model.unfreeze_at_epoch must be int \| None, got 'soon'"),
        (["optimizer.param_groups=[{params: 'net.*', lrr: 0.1}]"], "unknown setting 'lrr'.*did you mean 'lr'"),
        (["optimizer.param_groups=[{lr: 0.1}]"], r"param_groups\[0\] needs 'params'"),
        (["prune.amount=1.5"], "prune.amount must be between 0 and 1"),
        (["prune.end_epoch=2"], "leaves no epoch of fine-tuning"),
        (["prune.method=magnitude"], "prune.method must be"),
        (["task=distill"], "needs parameter 'teacher'"),
        (["task=distill", "task.teacher=/nowhere"], "task.teacher: /nowhere does not exist"),
    ],
)
def test_technique_mistakes_are_config_errors(overrides: list[str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        config(*overrides)


def test_cli_mistake_exits_2_without_traceback(tmp_path: Path) -> None:
    done = run_cli("run", *TINY, f"model.init_from={tmp_path}", "--dry-run")
    assert done.returncode == 2
    assert "is not a run directory" in done.stderr and "Traceback" not in done.stderr


# --------------------------------------------------------------------------- transfer learning


def test_init_from_freeze_and_param_groups(tmp_path: Path, teacher: Path) -> None:
    source = weights(teacher)
    result = train(
        tmp_path,
        "ft",
        "model.hidden=[32]",
        f"model.init_from={teacher}",
        "model.freeze=[net.1.*]",
        "optimizer.param_groups=[{params: 'net.5.*', lr: 0.0}]",
        "trainer.max_epochs=2",
    )
    tuned = weights(result.run_dir)
    report = result.summary["transfer"]["model"]
    assert report["init_from"]["loaded"] == len(source) and report["init_from"]["missing"] == []
    assert report["frozen_tensors"] == 2
    # frozen (net.1) and lr=0 (net.5, the head) parameters kept the teacher's values; the LayerNorm trained.
    for key in ("net.1.weight", "net.1.bias", "net.5.weight", "net.5.bias"):
        assert torch.equal(tuned[key], source[key]), key
    assert not torch.equal(tuned["net.2.weight"], source["net.2.weight"])


def test_unfreeze_at_epoch(tmp_path: Path, teacher: Path) -> None:
    result = train(
        tmp_path,
        "unfreeze",
        "model.hidden=[32]",
        f"model.init_from={teacher}",
        "model.freeze=[net.1]",
        "model.unfreeze_at_epoch=1",
        "trainer.max_epochs=2",
        "checkpoint.save_top_k=0",  # `last` only: the weights after epoch 1
    )
    last = torch.load(result.run_dir / "checkpoints" / "last.ckpt", weights_only=True)["state_dict"]
    assert not torch.equal(last["model.net.1.weight"], weights(teacher)["net.1.weight"])


def test_head_mismatch_fails_or_is_reinitialised(tmp_path: Path, teacher: Path) -> None:
    four = ["data.num_classes=4", "model.hidden=[32]", f"model.init_from={teacher}", "trainer.max_epochs=1"]
    with pytest.raises(ConfigError, match=r"do not fit the model: net.5.weight \[3, 32\] -> \[4, 32\]"):
        train(tmp_path, "mismatch", *four)
    assert not (tmp_path / "mismatch").exists()
    result = train(tmp_path, "reinit", *four, "model.init_mismatch=reinit")
    assert result.summary["transfer"]["model"]["init_from"]["reinitialized"] == ["net.5.weight", "net.5.bias"]
    with pytest.raises(ConfigError, match=r"model.freeze pattern\(s\) \['backbone.\*'\] match no parameter"):
        train(tmp_path, "nofreeze", "model.hidden=[32]", "model.freeze=[backbone.*]")


def test_frozen_batch_norm_stays_in_eval_mode() -> None:
    from torch import nn

    from engine.transfer import freeze, unfreeze

    net = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(), nn.LazyLinear(2))
    net(torch.randn(2, 1, 5, 5))
    assert freeze(net, ["0", "1"]) == ["0.weight", "0.bias", "1.weight", "1.bias"]
    net.train()
    before = net[1].running_mean.clone()
    net(torch.randn(8, 1, 5, 5) + 3)
    assert not net[1].training and torch.equal(net[1].running_mean, before)  # pre-trained statistics kept
    assert net[4].training and not net[0].weight.requires_grad and net[4].weight.requires_grad
    assert unfreeze(net) == 4
    assert net[1].training and net[0].weight.requires_grad
    net(torch.randn(8, 1, 5, 5) + 3)
    assert not torch.equal(net[1].running_mean, before)


# --------------------------------------------------------------------------- distillation


def test_distill_trains_student_from_teacher(tmp_path: Path, teacher: Path) -> None:
    result = train(tmp_path, "student", "task=distill", f"task.teacher={teacher}", "model.hidden=[8]")
    assert result.summary["status"] == "completed"
    metrics = result.summary["metrics"]
    assert metrics["train/kd_loss"] > 0 and 0 <= metrics["test/accuracy"] <= 1
    state = torch.load(result.run_dir / "checkpoints" / "best.ckpt", weights_only=True)["state_dict"]
    assert all(k.startswith(("model.", "val_metrics", "test_metrics", "loss")) for k in state)  # no teacher inside
    from engine.runs import open_run

    student = open_run(result.run_dir).task()
    assert sum(p.numel() for p in student.model.parameters()) < sum(v.numel() for v in weights(teacher).values())
    # The KD term: zero when the student's outputs equal the teacher's, positive otherwise.
    logits = torch.randn(5, 3)
    assert student.distillation_loss(logits, logits).abs() < 1e-6
    assert student.distillation_loss(logits, logits.flip(0)) > 0


def test_distill_refuses_a_teacher_of_other_classes(tmp_path: Path, teacher: Path) -> None:
    with pytest.raises(ConfigError, match="trained on other data: its num_classes is 3"):
        train(tmp_path, "bad", "task=distill", f"task.teacher={teacher}", "data.num_classes=4")


# --------------------------------------------------------------------------- pruning


@pytest.mark.parametrize("method", ["l1_unstructured", "ln_structured"])
def test_pruning_reaches_sparsity_and_is_permanent(tmp_path: Path, method: str) -> None:
    result = train(
        tmp_path,
        method,
        "model.hidden=[32]",
        "trainer.max_epochs=4",
        "prune.amount=0.5",
        f"prune.method={method}",
        "prune.start_epoch=1",
        "prune.end_epoch=2",
    )
    info = result.summary["pruning"]
    state = weights(result.run_dir)
    assert not any(k.endswith(("_orig", "_mask")) for k in state)  # plain weights in the checkpoint
    if method == "l1_unstructured":
        linear = [state["net.1.weight"], state["net.5.weight"]]
        zeros = sum(int((w == 0).sum()) for w in linear) / sum(w.numel() for w in linear)
        assert zeros == pytest.approx(0.5, abs=0.01) and info["sparsity"] == pytest.approx(0.5, abs=0.01)
    else:
        rows = state["net.1.weight"].abs().sum(1)
        assert int((rows == 0).sum()) == 16  # half of the 32 output channels; the head keeps its 3 classes
        assert int((state["net.5.weight"].abs().sum(1) == 0).sum()) == 0
    assert [h["epoch"] for h in info["history"]] == [1, 2] and info["val_before"]


# --------------------------------------------------------------------------- ensembles and reports


def test_ensemble_averages_members(tmp_path: Path, teacher: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from engine.evaluate import ensemble, evaluate, predictions, scores

    other = train(tmp_path, "seed1", "seed=1", "model.hidden=[32]", "trainer.max_epochs=2").run_dir
    result = ensemble([str(teacher), str(other)])
    assert set(result) == {"teacher", "seed1", "ensemble"}
    assert result["teacher"]["accuracy"] == pytest.approx(evaluate(str(teacher))["test/accuracy"], abs=1e-6)
    p1, y, *_ = predictions(str(teacher))
    p2, *_ = predictions(str(other))
    assert result["ensemble"] == pytest.approx(scores((p1 + p2) / 2, y, "classification"))
    assert main(["evaluate", str(teacher), str(other), "--ensemble"]) == 0
    out = capsys.readouterr().out
    assert "ensemble" in out and "test/accuracy" in out
    different = train(tmp_path, "other-data", "data.num_samples=200", "trainer.max_epochs=1").run_dir
    with pytest.raises(EngineError, match=r"do not share their test split.*num_samples"):
        ensemble([str(teacher), str(different)])


def test_predict_ensemble(tmp_path: Path, teacher: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("engine_deploy")
    sample = tmp_path / "x.json"
    sample.write_text(json.dumps([[0.1, -0.2, 0.3, 0.0, 1.0, -1.0], [1.0, 1.0, 0.0, 0.0, 0.0, 0.5]]))
    assert main(["predict", str(teacher), str(sample), "--ensemble", str(teacher), "--json"]) == 0
    ensembled = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert main(["predict", str(teacher), str(sample), "--json"]) == 0
    single = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    # A run ensembled with itself predicts what it predicts alone.
    for a, b in zip(ensembled, single, strict=True):
        assert a["label"] == b["label"] and a["probability"] == pytest.approx(b["probability"], abs=1e-5)
        assert a["members"] == [b["label"], b["label"]]


def test_report_writes_png_and_markdown(tmp_path: Path, teacher: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("matplotlib")
    other = train(tmp_path, "lr", "model.hidden=[32]", "optimizer.lr=0.01", "trainer.max_epochs=2").run_dir
    assert main(["report", str(teacher), str(other), "--out", str(tmp_path / "rep")]) == 0
    printed = capsys.readouterr().out
    png = tmp_path / "rep" / "curves.png"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    text = (tmp_path / "rep" / "report.md").read_text()
    assert "| optimizer.lr | 0.0010 | 0.0100 |" in text and "## Runs" in text
    assert "loss" in printed and "learning rate" not in printed  # each run's lr is constant: in the table
    assert "`lr-AdamW` (constant 0.0010, 0.0100)" in text
    assert main(["report", str(tmp_path / "nope")]) == 2
    assert "run directory not found" in capsys.readouterr().err


def test_digits_class_subset() -> None:
    """vision.digits data.classes: the label subset the fine-tuning benchmark pre-trains and fine-tunes on."""
    vision = pytest.importorskip("engine_vision.data")
    src = vision.Digits(classes=[5, 7, 9])
    assert src.facts["num_classes"] == 3 and src.facts["class_names"] == ["5", "7", "9"]
    assert sorted(src.y.unique().tolist()) == [0, 1, 2] and 500 < len(src.y) < 560
    with pytest.raises(ConfigError, match=r"distinct digits 0\.\.9"):
        vision.Digits(classes=[3, 3])


def test_listing_and_help_stay_torch_free() -> None:
    code = (
        "import sys\nfrom engine.cli import main\n"
        "for argv in (['report', '--help'], ['evaluate', '--help'], ['components', 'show', 'distill']):\n"
        "    try:\n        main(argv)\n    except SystemExit:\n        pass\n"
        "assert 'torch' not in sys.modules and 'matplotlib' not in sys.modules\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "--ensemble" in done.stdout and "--out DIR" in done.stdout and "task.teacher" in done.stdout
