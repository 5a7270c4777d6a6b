"""nlp.seq2seq through engine-deploy's text path (issue 35): deployed artifacts verified against eager on padded
batches of different lengths, scored with the task's BLEU/chrF; ``engine serve`` and ``engine translate`` text in,
text out. Only the protocols connect them: deploy has no seq2seq case."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

TINY = [
    "data=nlp.synthetic_translation",
    "data.num_pairs=600",
    "data.batch_size=32",
    "model.d_model=32",
    "model.n_head=2",
    "model.n_encoder_layers=1",
    "model.n_decoder_layers=1",
    "trainer.max_epochs=2",
    "task.val_generate=16",
]


@pytest.fixture(scope="module")
def run(train: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    return Path(train(*TINY, root=tmp_path_factory.mktemp("s2s"), name="s2s").run_dir)


@pytest.mark.parametrize("target", ["torchscript", "onnx"])
def test_deploy_verifies_generation_over_the_artifact(cli: Any, run: Path, target: str) -> None:
    r = cli("deploy", str(run), "--target", target, "--samples", "40")
    assert r.returncode == 0, r.stderr
    manifest = json.loads((run / "deploy" / target / "manifest.json").read_text())
    v = manifest["verification"]
    assert v["generation"]["same_outputs"] == 1.0 and v["max_abs_diff"] < 1e-3, v
    assert len(v["generation"]["batch_lengths"]) > 1  # batches padded to different lengths
    assert v["metric"]["name"] == "test/bleu" and abs(v["metric"]["change"]) < 1e-6, v["metric"]
    assert "error" not in v["metric"] and "box" not in r.stdout


def test_serve_and_translate_text(cli: Any, run: Path) -> None:
    import urllib.request

    from engine_deploy.predictor import Predictor
    from engine_deploy.server import BackgroundServer, create_app

    with BackgroundServer(create_app(Predictor(run), max_batch_size=4, max_wait_ms=10)) as url:
        req = urllib.request.Request(
            url + "/predict",
            data=json.dumps({"inputs": ["the small dog sees a cat", "a red bird sees the king"]}).encode(),
            headers={"content-type": "application/json"},
        )
        with urllib.request.urlopen(req, timeout=60) as resp:
            outputs = json.loads(resp.read())["outputs"]
    assert len(outputs) == 2 and all(o["text"] and isinstance(o["text"], str) for o in outputs)
    r = cli("translate", str(run), "the small dog sees a cat", "--beam", "2")
    assert r.returncode == 0 and r.stdout.strip(), r.stderr
    bad = cli("translate", str(run), "")
    assert bad.returncode == 2 and len(bad.stderr.strip().splitlines()) == 1, bad.stderr


def test_explain_attributes_each_translated_word(cli: Any, run: Path, tmp_path: Path) -> None:
    (tmp_path / "in.txt").write_text("the small dog sees a cat\n")
    res = cli("explain", str(run), str(tmp_path / "in.txt"), "--method", "saliency", "--max-new-tokens", "8")
    assert res.returncode == 0, res.stderr
    record = json.loads((run / "explain" / "saliency" / "attributions.json").read_text())
    first = record["inputs"][0]
    assert record["kind"] == "sequence" and first["output_tokens"], record
    assert len(first["attribution"]) == len(first["output_tokens"])  # a row per generated token
    assert all(len(row) == len(first["input_tokens"]) for row in first["attribution"])
    assert any(t.strip() in ("dog", "small", "sees", "cat") for t in first["input_tokens"])  # tokens as text
