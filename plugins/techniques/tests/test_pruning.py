"""Pruning: a sparsity schedule during training, plain weights in checkpoints, made permanent at the end."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from engine_techniques.prune import Prune, plain_state_dict

from engine.runs import load_checkpoint


def test_the_schedule_reaches_the_amount_at_the_end_epoch() -> None:
    cubic, linear = Prune(amount=0.5), Prune(amount=0.5, schedule="linear")
    cubic.epochs = linear.epochs = [2, 3, 4, 5]
    assert cubic.target_at(1) == 0.0 and cubic.target_at(5) == pytest.approx(0.5)
    assert linear.target_at(2) == pytest.approx(0.125) and cubic.target_at(2) > linear.target_at(2)  # cubic: early
    assert cubic.target_at(9) == pytest.approx(0.5)


def test_checkpoints_hold_plain_weights() -> None:
    state = {"a.weight_orig": torch.ones(2, 2), "a.weight_mask": torch.tensor([[1.0, 0.0], [0.0, 1.0]])}
    state["a.bias"] = torch.zeros(2)
    plain = plain_state_dict(state)
    assert set(plain) == {"a.weight", "a.bias"} and torch.equal(plain["a.weight"], torch.eye(2))


@pytest.mark.parametrize("method", ["l1_unstructured", "ln_structured"])
def test_pruning_reaches_sparsity_and_is_permanent(tmp_path: Path, method: str, tiny_train: Any) -> None:
    result = tiny_train(
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
    state = load_checkpoint(result.run_dir / "checkpoints" / "best.ckpt")["state_dict"]
    state = {k.removeprefix("model."): v for k, v in state.items() if k.startswith("model.")}
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
    # The best checkpoint was chosen after the final pruning step (the earlier ones were forgotten).
    assert result.summary["best_step"] == result.summary["global_step"]  # epoch 3, the only one after
    assert info["epochs"] == [1, 2] and info["layers"] == (2 if method == "l1_unstructured" else 1)
