"""Transfer learning: init_from, freeze, unfreeze_at_epoch (with the core's optimizer.param_groups)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from engine_techniques.transfer import apply_model_keys, freeze, init_reports, load_weights, unfreeze
from torch import nn

import engine
from engine import ConfigError
from engine.runs import load_checkpoint, save_weights


def weights(run_dir: Path, which: str = "best") -> dict[str, torch.Tensor]:
    state = load_checkpoint(run_dir / "checkpoints" / f"{which}.ckpt")["state_dict"]
    return {k.removeprefix("model."): v for k, v in state.items() if k.startswith("model.")}


def test_frozen_batch_norm_stays_in_eval_mode() -> None:
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


def test_init_from_a_weights_file_and_the_report(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """Loading, skipping, mismatches and freezing on a built model, without training (fast)."""
    source = engine.create("model", "mlp", in_features=6, out_features=3, hidden=[8])
    save_weights(source.state_dict(), tmp_path / "w.safetensors")
    model = engine.create("model", "mlp", in_features=6, out_features=3, hidden=[8])
    keys = {"init_from": str(tmp_path / "w.safetensors"), "init_skip": ["net.5"], "freeze": ["net.1"]}
    apply_model_keys(model, keys, "model", component=engine.get_registry().resolve("model", "mlp"))
    assert torch.equal(model.net[1].weight, source.net[1].weight)
    assert not torch.equal(model.net[5].weight, source.net[5].weight)  # skipped: freshly initialised
    assert "model.init_from: loaded 4/6 tensors" in capsys.readouterr().err
    holder = nn.Module()
    holder.model = model
    report = init_reports(holder)["model"]
    assert sorted(report["init_from"]["reinitialized"]) == ["net.5.bias", "net.5.weight"]
    assert report["frozen_tensors"] == 2
    other = engine.create("model", "mlp", in_features=6, out_features=4, hidden=[8])
    with pytest.raises(ConfigError, match=r"2 tensor\(s\) of .* do not fit the model: net.5.bias \[3\] -> \[4\]"):
        load_weights(other, str(tmp_path / "w.safetensors"))
    with pytest.raises(ConfigError, match=r"model.init_skip pattern\(s\) \['head.\*'\] match no parameter"):
        load_weights(other, str(tmp_path / "w.safetensors"), skip=["head.*"])
    with pytest.raises(ConfigError, match="the checkpoint does not match the model"):
        wider = engine.create("model", "mlp", in_features=6, out_features=3, hidden=[8, 8])
        load_weights(wider, str(tmp_path / "w.safetensors"), strict=True, mismatch="reinit")


def test_reopening_a_run_does_not_load_from_elsewhere(tmp_path: Path) -> None:
    """``restoring``: the run's own checkpoint replaces the weights, so a vanished source is not read."""
    from engine_techniques.plugin import engine_model_built

    from engine import ModelBuilt

    model = engine.create("model", "mlp", in_features=6, out_features=3, hidden=[8])
    keys = {"init_from": str(tmp_path / "gone"), "freeze": ["net.1"]}
    component = engine.get_registry().resolve("model", "mlp")
    engine_model_built(ModelBuilt("model", model, component, {"model": {"name": "core.mlp", **keys}}, keys, True))
    assert not model.net[1].weight.requires_grad  # frozen all the same


def test_init_from_freeze_and_param_groups(tmp_path: Path, teacher: Path, tiny_train: Any) -> None:
    source = weights(teacher)
    result = tiny_train(
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
    reopened = engine.open_run(result.run_dir).task()  # the source is not needed to reopen the run
    assert torch.equal(reopened.model.net[2].weight, tuned["net.2.weight"])


def test_unfreeze_at_epoch(tmp_path: Path, teacher: Path, tiny_train: Any) -> None:
    result = tiny_train(
        tmp_path,
        "unfreeze",
        "model.hidden=[32]",
        f"model.init_from={teacher}",
        "model.freeze=[net.1]",
        "model.unfreeze_at_epoch=1",
        "trainer.max_epochs=2",
        "checkpoint.save_top_k=0",  # `last` only: the weights after epoch 1
    )
    last = weights(result.run_dir, "last")
    assert not torch.equal(last["net.1.weight"], weights(teacher)["net.1.weight"])


def test_head_mismatch_fails_or_is_reinitialised(tmp_path: Path, teacher: Path, tiny_train: Any) -> None:
    four = ["data.num_classes=4", "model.hidden=[32]", f"model.init_from={teacher}", "trainer.max_epochs=1"]
    with pytest.raises(ConfigError, match=r"do not fit the model: net.5.weight \[3, 32\] -> \[4, 32\]"):
        tiny_train(tmp_path, "mismatch", *four)
    assert not (tmp_path / "mismatch").exists()
    result = tiny_train(tmp_path, "reinit", *four, "model.init_mismatch=reinit")
    assert result.summary["transfer"]["model"]["init_from"]["reinitialized"] == ["net.5.weight", "net.5.bias"]
    with pytest.raises(ConfigError, match=r"model.freeze pattern\(s\) \['backbone.\*'\] match no parameter"):
        tiny_train(tmp_path, "nofreeze", "model.hidden=[32]", "model.freeze=[backbone.*]")
