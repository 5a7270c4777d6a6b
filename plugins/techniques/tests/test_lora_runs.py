"""LoRA runs end to end: adapters-only checkpoints, reopening, init_from of a LoRA run, gradient accumulation."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import torch
from engine_techniques.weights import load_weights

import engine
from engine.protocols import MergesAdapters, implements
from engine.runs import load_checkpoint, load_weights_file

#: A tiny character GPT on generated instructions (the nlp plugin's source; its task: nlp.instruct).
GPT = (
    "model=nlp.gpt",
    "model.n_layer=1",
    "model.d_model=32",
    "model.n_head=2",
    "data=nlp.instructions",
    "data.num_examples=120",
    "data.context_length=64",
    "data.batch_size=8",
    "task.max_new_tokens=2",
    "task.eval_limit=4",
    "trainer.max_steps=4",
    "trainer.val_check_interval=4",
)


@pytest.fixture(scope="module")
def base_run(tmp_path_factory: pytest.TempPathFactory, train: Any) -> Path:
    """A base model trained in full (the pre-trained model LoRA adapts)."""
    return Path(train(*GPT, root=tmp_path_factory.mktemp("base"), name="base").run_dir)


def _weights(run_dir: Path) -> dict[str, torch.Tensor]:
    return load_checkpoint(run_dir / "checkpoints" / "last.ckpt")["state_dict"]


@pytest.mark.slow
def test_a_lora_run_saves_adapters_reopens_and_merges(tmp_path: Path, base_run: Path, train: Any) -> None:
    result = train(
        *GPT,
        f"model.init_from={base_run}",
        "peft.r=4",
        "peft.target_modules=[qkv,fc]",
        "trainer.accumulate_grad_batches=2",
        root=tmp_path,
        name="lora",
    )
    run_dir = Path(result.run_dir)
    info = result.summary["peft"]["model"]
    assert info["adapted_layers"] == 2 and info["trainable_params"] < info["total_params"] / 5
    assert not info["base_saved"] and info["base"] == {"init_from": str(base_run)}
    state = _weights(run_dir)
    assert state and all("lora_" in k for k in state), sorted(state)[:5]  # the adapters, no base weight
    assert all("lora_" in k for k in load_weights_file(run_dir / "model.safetensors"))
    assert any(v.abs().sum() > 0 for k, v in state.items() if "lora_B" in k)  # the adapters trained

    reopened = engine.open_run(run_dir).model()  # base rebuilt from init_from, adapters from the checkpoint
    assert implements(reopened, MergesAdapters)
    base = {k.removeprefix("model."): v for k, v in _weights(base_run).items() if k.startswith("model.")}
    assert torch.equal(reopened.net.tok_emb.weight, base["tok_emb.weight"])  # the base did not train
    ids = torch.randint(0, reopened.net.vocab_size, (2, 20))
    adapted = reopened(ids)
    merged = reopened.merged()
    assert (merged(ids) - adapted).abs().max() <= 1e-4

    # init_from of a LoRA run: the weights with the adapters merged
    plain = engine.create(
        "model", "nlp.gpt", vocab_size=reopened.net.vocab_size, context_length=64, n_layer=1, d_model=32, n_head=2
    )
    report = load_weights(plain, str(run_dir))
    assert report["missing"] == [] and (plain.eval()(ids) - adapted).abs().max() <= 1e-4


@pytest.mark.slow
def test_a_lora_target_matching_nothing_stops_the_run(tmp_path: Path, base_run: Path, train: Any) -> None:
    with pytest.raises(engine.ConfigError, match=r"'qkvv' matches no layer of the model — did you mean .*'qkv'"):
        train(*GPT, f"model.init_from={base_run}", "peft.target_modules=[qkvv]", root=tmp_path, name="bad")


@pytest.mark.slow
def test_a_lora_run_continues_from_its_checkpoint(tmp_path: Path, base_run: Path, train: Any) -> None:
    """Resuming loads the adapters-only checkpoint strictly (Lightning): the base comes from init_from again."""
    lora = (*GPT[:-2], f"model.init_from={base_run}", "peft.target_modules=[qkv]", "trainer.val_check_interval=2")
    first = train(*lora, "trainer.max_steps=2", root=tmp_path, name="resumed")
    before = _weights(Path(first.run_dir))
    result = train(*lora, "trainer.max_steps=4", root=tmp_path, name="resumed", resume=first.run_dir)
    after = _weights(Path(result.run_dir))
    assert result.summary["status"] == "completed" and sorted(after) == sorted(before)
    assert all("lora_" in k for k in after) and any(not torch.equal(after[k], before[k]) for k in after)
