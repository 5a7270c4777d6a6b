"""Deploying a third-party seq2seq run (``seq2seq_plugin/``: per-batch padding, nn.TransformerDecoder): the network
exported with the task's ``network_inputs``, the task's decoding loop verified over the artifact (issue 35)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch

from engine.testing import one_error


@pytest.fixture(scope="module")
def deployed(s2s_run: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    from engine_deploy.deploy import deploy

    out = {}
    for target in ("torchscript", "export", "onnx"):
        out[target] = tmp_path_factory.mktemp(target)
        deploy(s2s_run, target, out=out[target], timing=target == "onnx")
    return out


@pytest.mark.parametrize("target", ["torchscript", "export", "onnx"])
def test_generating_run_verifies_on_batches_of_different_lengths(deployed: dict[str, Path], target: str) -> None:
    """Defects 1 (per-batch padding), 2 (TransformerDecoder to ONNX), 5 (score_outputs, problem, vocabulary)."""
    manifest = json.loads((deployed[target] / "manifest.json").read_text())
    v = manifest["verification"]
    assert v["passed"] and v["max_abs_diff"] <= v["tolerance"]
    g = v["generation"]
    assert g["same_outputs"] == 1.0 and len(g["batch_lengths"]) > 1 and g["call_shapes"] > 2
    assert v["metric"]["name"] == "test/token_accuracy" and v["metric"]["change"] == 0
    assert set(v["metrics"]) == {"test/token_accuracy", "test/exact_match"}
    assert manifest["problem"] == "transduction" and manifest["input"]["kind"] == "text"
    assert manifest["output"]["kind"] == "text" and manifest["vocabulary"] == {"vocab_size": 9}
    assert [a["dtype"] for a in manifest["input"]["arguments"]] == ["int64", "int64"]
    assert json.loads((deployed[target] / "data" / "vocab.json").read_text())[3:] == list("abcdef")
    sample = json.loads((deployed[target] / "sample.json").read_text())
    assert isinstance(sample["inputs"][0], str) and sample["inputs"][0]


def test_onnx_latency_measured_with_the_networks_arguments(deployed: dict[str, Path]) -> None:
    latency = json.loads((deployed["onnx"] / "manifest.json").read_text())["verification"]["latency_ms"]
    assert set(latency) == {"batch1", "batch32"} and latency["batch1"]["artifact"]["p50_ms"] > 0


def test_deploy_table_speaks_of_generation(cli: Any, s2s_run: Path, tmp_path: Path) -> None:
    r = cli("deploy", str(s2s_run), "--target", "torchscript", "--out", str(tmp_path), "--no-timing")
    assert r.returncode == 0, r.stderr
    assert "same generations" in r.stdout and "decoding loop runs in Python" in r.stdout
    assert "transduction" in r.stdout and "test/token_accuracy" in r.stdout and "vocab_size 9" in r.stdout
    assert "box" not in r.stdout and "top-1" not in r.stdout


def test_metric_errors_are_reported(cli: Any, s2s_run: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Defect 5: a metric that fails is in the manifest and the table, never silently dropped."""
    import s2sdemo.impl

    def broken(self: Any, outputs: Any, targets: Any) -> dict[str, float]:
        raise ValueError("no metric today")

    monkeypatch.setattr(s2sdemo.impl.Seq2SeqTask, "score_outputs", broken)
    r = cli("deploy", str(s2s_run), "--target", "torchscript", "--out", str(tmp_path), "--no-timing")
    assert r.returncode == 0, r.stderr
    assert "could not be computed: ValueError: no metric today" in r.stdout
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    assert manifest["verification"]["metric"] == {"error": "ValueError: no metric today"}


def test_int8_of_a_transformer_is_one_line(cli: Any, s2s_run: Path, tmp_path: Path) -> None:
    """Defect 6: what fails and what to use instead, exit 2."""
    r = cli("deploy", str(s2s_run), "--target", "int8", "--out", str(tmp_path), "--no-timing")
    line = one_error(r, "int8", "Transformer")
    assert "method cannot be used as a value" not in r.stderr.replace(line, "") or len(r.stderr.splitlines()) <= 3
    assert "--target onnx" in r.stderr


def test_transformer_decoder_exports_to_onnx_without_data_dependent_guard(tmp_path: Path) -> None:
    """Defect 2 on the bare model (what the author wrote: a causal mask without tgt_is_causal)."""
    from engine_deploy.targets import Onnx
    from s2sdemo.impl import TinySeq2Seq

    model = TinySeq2Seq(9, 7).eval()
    src, tgt = torch.randint(3, 9, (3, 5)), torch.ones(3, 1, dtype=torch.long)
    target = Onnx()
    run = target.load(target.export(model, (src, tgt), tmp_path))
    for s, t in ((src[:1, :2], tgt[:1]), (torch.randint(3, 9, (4, 7)), torch.randint(3, 9, (4, 6)))):
        assert torch.allclose(run(s, t), model(s, t), atol=1e-4)


def test_unexportable_branch_is_one_line(tmp_path: Path) -> None:
    """A model branching on tensor values: one line saying what to change, not pages of FX graph."""
    from engine_deploy.targets import Export

    from engine import EngineError

    class Branchy(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return x * 2 if bool(x.sum() > 0) else x

    with pytest.raises(EngineError) as caught:
        Export().export(Branchy(), torch.ones(2, 3), tmp_path)
    assert "branches on the values of a tensor" in str(caught.value) and "\n" not in caught.value.message
    assert "is_causal" in caught.value.hint


def test_tensor_batches_padded_per_batch_are_joined_not_concatenated() -> None:
    """Defect 1 in `common`: batches of different lengths are padded to the longest, never torch.cat'ed as they are."""
    from engine_deploy import common

    class Loaders:
        def setup(self, stage: str) -> None: ...

        def test_dataloader(self) -> Any:  # a loader: an iterable of batches (a list would be a list of loaders)
            long = torch.long
            return iter([(torch.ones(2, 3, dtype=long), torch.zeros(2)), (torch.ones(1, 5, dtype=long), torch.ones(1))])

        val_dataloader = train_dataloader = test_dataloader

    x, y, split = common.split_inputs(Loaders(), 10, pad=0)
    assert x.shape == (3, 5) and x[:2, 3:].eq(0).all() and split == "test" and y is not None and len(y) == 3
    batches, _, _ = common.split_batches(Loaders(), 10)
    assert [b.shape[1] for b in batches] == [3, 5]
