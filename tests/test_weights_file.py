"""``model.safetensors``: tied parameters (one tensor under two names) are stored once and read back under both."""

from __future__ import annotations

from pathlib import Path

import torch
from safetensors import safe_open
from torch import nn

from engine.runs import load_weights_file, save_weights


class Tied(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(300, 64)
        self.head = nn.Linear(64, 300, bias=False)
        self.head.weight = self.embed.weight  # weight tying, as GPT-2's
        self.other = nn.Linear(4, 4)


def test_tied_weights_are_saved_once_and_load_back_strictly(tmp_path: Path) -> None:
    model = Tied()
    path = save_weights(model.state_dict(), tmp_path / "model.safetensors")
    with safe_open(str(path), framework="pt") as f:
        stored = set(f.keys())
    assert stored == {"embed.weight", "other.weight", "other.bias"}  # the head's alias is not written again
    assert path.stat().st_size < 300 * 64 * 4 * 1.2  # one copy of the 300x64 matrix, not two
    state = load_weights_file(path)
    assert set(state) == set(model.state_dict())
    fresh = Tied()
    fresh.load_state_dict(state)  # strict: every name present
    assert torch.equal(fresh.head.weight, model.embed.weight) and fresh.head.weight is fresh.embed.weight


def test_equal_but_separate_tensors_are_both_kept(tmp_path: Path) -> None:
    a = torch.ones(3)
    path = save_weights({"a": a, "b": a.clone(), "c": a[:2]}, tmp_path / "w.safetensors")
    with safe_open(str(path), framework="pt") as f:
        assert set(f.keys()) == {"a", "b", "c"}  # a copy and a partial view are not aliases
    assert set(load_weights_file(path)) == {"a", "b", "c"}
