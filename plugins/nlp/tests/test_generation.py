"""The LM task as a text-in/text-out task (`DeclaresIO`, `Generates`, ``generate_stream``) and its sources'
`EncodesText` (issue 36, defects 1 and 2 on the task's side)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from engine import ConfigError
from engine.protocols import DeclaresIO, EncodesText, Generates, implements


def _task(context: int = 16, vocab: int = 50, positions: str = "learned") -> object:
    from engine_nlp.models import GPT
    from engine_nlp.optim import gpt_adamw
    from engine_nlp.task import LanguageModelingTask

    torch.manual_seed(0)
    model = GPT(vocab, context, n_layer=1, d_model=16, n_head=2, positions=positions).eval()
    return LanguageModelingTask(model, gpt_adamw)


class Recompute(torch.nn.Module):
    """The same network, seen as an opaque callable (a deployed artifact): no KV cache."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        return self.model(idx)


def test_task_declares_text_io_and_generates() -> None:
    from engine_nlp.task import LanguageModelingTask

    assert implements(LanguageModelingTask, DeclaresIO) and implements(LanguageModelingTask, Generates)
    assert LanguageModelingTask.input_kind == "text" and LanguageModelingTask.output_kind == "text"
    task = _task()
    (x,) = task.network_inputs([[1, 2, 3], [4]])
    assert x.tolist() == [[1, 2, 3], [4, 0, 0]] and x.dtype == torch.long


@pytest.mark.parametrize("positions", ["learned", "rotary"])
def test_prompts_of_any_length_cache_and_recompute_agree(positions: str) -> None:
    task = _task(positions=positions)
    prompts = [[1, 2, 3], [5], [7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22]]  # 3, 1, 16 (context)
    cached = task.generate(task.model, prompts, max_new_tokens=12, temperature=0)
    assert [len(o) for o in cached] == [12, 12, 12]
    assert task.generate(Recompute(task.model), prompts, max_new_tokens=12, temperature=0) == cached
    alone = [task.generate(task.model, [p], max_new_tokens=12, temperature=0)[0] for p in prompts]
    assert alone == cached
    # the same as the model's own greedy generation (a KV cache), a prompt at a time
    for p, out in zip(prompts, cached, strict=True):
        ref = task.model.generate(torch.tensor([p]), 12, temperature=0)[0, len(p) :].tolist()
        assert out == ref


class ThirdPartyLM(torch.nn.Module):
    """Not an ``nlp.gpt``: any model offering ``CachedDecoding`` (here over a GPT's blocks), calls counted."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model, self.context_length, self.calls = model, model.context_length, []

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        self.calls.append(("forward", idx.shape[1]))
        return self.model(idx)

    def forward_cached(self, idx: torch.Tensor, cache: object) -> tuple[torch.Tensor, object]:
        self.calls.append(("cached", idx.shape[1]))
        cache = [[] for _ in self.model.blocks] if cache is None else cache
        return self.model(idx, cache)[:, -1], cache

    def reorder_cache(self, cache: list, rows: torch.Tensor) -> list:
        self.calls.append(("reorder", len(rows)))
        return [[t[rows] for t in layer] for layer in cache]


class Forwarding(torch.nn.Module):
    """A wrapper forwarding its model's attributes (as LoRA's ``AdaptedModel``): ``implements`` cannot see them."""

    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.net = model

    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        return self.net(idx)

    def __getattr__(self, name: str) -> object:
        try:
            return super().__getattr__(name)
        except AttributeError:
            return getattr(self._modules["net"], name)


def test_the_kv_cache_is_a_protocol_not_a_model_name() -> None:
    from engine_nlp.generation import CachedDecoding, caches

    task = _task()
    assert isinstance(task.model, CachedDecoding) and caches(task.model) and caches(Forwarding(task.model))
    assert not caches(Recompute(task.model))  # an opaque callable (a deployed artifact): recomputed
    prompts = [[1, 2, 3], [4, 5, 6], [7]]
    ref = task.generate(Recompute(task.model), prompts, max_new_tokens=8, temperature=0, stop=[[0]])
    lm = ThirdPartyLM(task.model)
    assert task.generate(lm, prompts, max_new_tokens=8, temperature=0, stop=[[0]]) == ref
    assert ("forward", 3) not in lm.calls and lm.calls[:2] == [("cached", 3), ("cached", 1)]
    assert {n for kind, n in lm.calls if kind == "cached"} == {3, 1}  # the prompts once, then one token a step
    opts = {"max_new_tokens": 8, "temperature": 0.8, "seed": 1}
    assert task.generate(Forwarding(ThirdPartyLM(task.model)), prompts, **opts) == task.generate(
        Recompute(task.model), prompts, **opts
    )


def test_finished_rows_leave_the_cache_and_the_context_restarts_it() -> None:
    task = _task(context=8)
    lm = ThirdPartyLM(task.model)
    free = task.generate(Recompute(task.model), [[1, 2], [3, 4]], max_new_tokens=4, temperature=0)
    stop = [[free[0][1]]]  # the first prompt stops early, the second goes on alone
    out = task.generate(lm, [[1, 2], [3, 4]], max_new_tokens=4, temperature=0, stop=stop)
    assert out == task.generate(Recompute(task.model), [[1, 2], [3, 4]], max_new_tokens=4, temperature=0, stop=stop)
    if len(out[1]) == 4:
        assert ("reorder", 1) in lm.calls
    lm.calls.clear()
    task.generate(lm, [[1, 2]], max_new_tokens=12, temperature=0)  # 2 + 12 tokens through a context of 8
    assert [c for c in lm.calls if c[1] > 1] == [("cached", 2), ("cached", 4)]  # full at 8: the last 4 again


def test_seeded_sampling_is_deterministic_alone_or_batched() -> None:
    task = _task()
    opts = {"max_new_tokens": 20, "temperature": 0.9, "top_k": 10, "top_p": 0.9, "seed": 7}
    a = task.generate(task.model, [[1, 2], [3, 4, 5]], **opts)
    assert a == task.generate(task.model, [[1, 2], [3, 4, 5]], **opts)
    assert a[1] == task.generate(task.model, [[3, 4, 5]], **opts)[0]
    assert a != task.generate(task.model, [[1, 2], [3, 4, 5]], **{**opts, "seed": 8})
    assert list(task.generate_stream(task.model, [3, 4, 5], **opts)) == a[1]


def test_top_k_one_is_greedy_and_stop_sequences_end_early() -> None:
    task = _task()
    greedy = task.generate(task.model, [[1, 2]], max_new_tokens=10, temperature=0)[0]
    assert task.generate(task.model, [[1, 2]], max_new_tokens=10, top_k=1, seed=3)[0] == greedy
    stop = greedy[3:5]
    first = next(i for i in range(len(greedy) - 1) if greedy[i : i + 2] == stop)
    out = task.generate(task.model, [[1, 2]], max_new_tokens=10, temperature=0, stop=[stop])[0]
    assert out == greedy[:first]  # the stop sequence is not part of the answer
    assert list(task.generate_stream(task.model, [1, 2], max_new_tokens=10, temperature=0, stop=[stop])) == out


@pytest.mark.parametrize(
    ("prompts", "options", "message"),
    [
        ([[100000]], {}, "outside the vocabulary"),
        ([[-1, 2]], {}, "outside the vocabulary"),
        ([[]], {}, "empty"),
        ([list(range(17))], {}, "more than the context length 16"),
        ([[1]], {"max_new_tokens": 0}, "max_new_tokens must be an integer >= 1"),
        ([[1]], {"temperature": -1}, "temperature"),
        ([[1]], {"top_p": 0}, "top_p"),
        ([[1]], {"max_new_token": 3}, "did you mean 'max_new_tokens'"),
        ([[1]], {"stop": ["\n"]}, "stop takes token ids here, not text"),
    ],
)
def test_bad_prompts_and_options_are_one_line_errors(prompts: list, options: dict, message: str) -> None:
    task = _task()
    with pytest.raises(ConfigError, match=message):
        task.generate(task.model, prompts, **options)
    with pytest.raises(ConfigError, match=message):
        task.generate_stream(task.model, prompts[0], **options)  # checked before the first token


def test_lm_sources_encode_and_decode_text(corpus_file: Path) -> None:
    from engine_nlp.data import TextFiles
    from engine_nlp.unlabelled import UnlabelledTexts

    assert implements(TextFiles, EncodesText) and implements(UnlabelledTexts, EncodesText)
    source = TextFiles(paths=[str(corpus_file)], context_length=32)
    ids = source.encode_text("def f(x):")
    assert 0 < len(ids) <= 32 and source.decode_tokens(ids) == "def f(x):"
    for text, message in [("", "empty"), ("☃ snow", "character"), ("x" * 40, "more than the context length 32")]:
        with pytest.raises(ConfigError, match=message) as info:
            source.encode_text(text)
        assert "\n" not in str(info.value)


# --------------------------------------------------------------------------- engine nlp perplexity (item 7)


@pytest.mark.parametrize("stride", [None, 3, 8])
def test_perplexity_scores_every_token_once(stride: int | None) -> None:
    from engine_nlp.perplexity import perplexity

    ids = list(range(20)) * 2  # 40 tokens: 39 predictions

    def uniform(x: torch.Tensor) -> torch.Tensor:
        return torch.zeros(*x.shape, 50)

    out = perplexity(uniform, ids, context=8, stride=stride)
    assert out["tokens"] == 39 and out["perplexity"] == pytest.approx(50.0)
    assert out["bits_per_token"] == pytest.approx(torch.log2(torch.tensor(50.0)).item())
    task = _task(context=8)
    blocks = torch.tensor(ids[:33]).view(1, 33)
    x, y = blocks[:, :32].reshape(4, 8), blocks[:, 1:33].reshape(4, 8)
    with torch.no_grad():
        ref = torch.nn.functional.cross_entropy(task.model(x).reshape(-1, 50), y.reshape(-1)).item()
    assert perplexity(task.model, ids[:33], context=8)["loss"] == pytest.approx(ref, rel=1e-5)


def test_perplexity_command(tiny_lm_run: Path, corpus_file: Path, tmp_path: Path, cli: object) -> None:
    import json

    sample = tmp_path / "sample.txt"
    sample.write_text(corpus_file.read_text(encoding="utf-8")[:3000], encoding="utf-8")
    r = cli("nlp", "perplexity", str(tiny_lm_run), str(sample), "--json")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert out["tokens"] == 2999 and 1 < out["perplexity"] < 200 and out["bits_per_token"] > 0
    r = cli("nlp", "perplexity", str(tiny_lm_run), str(tmp_path / "missing.txt"))
    assert r.returncode == 2 and "not found" in r.stderr and "Traceback" not in r.stderr
    r = cli("nlp", "perplexity", str(tiny_lm_run), str(sample), "--stride", "0")
    assert r.returncode == 2 and "--stride must be between 1" in r.stderr


# --------------------------------------------------------------------------- defect 3: fused AdamW and clipping


def test_fused_adamw_is_chosen_so_that_mixed_precision_can_clip(corpus_file: Path, tmp_path: Path) -> None:
    """``nlp/char-gpt trainer.precision=bf16-mixed`` failed at fit (fused AdamW + gradient_clip_val) after a
    valid --dry-run; the plan now chooses ``fused`` and --dry-run shows what fit uses."""
    import engine
    from engine.testing import train_run

    def plan(*overrides: str) -> dict:
        return engine.plan(engine.compose("nlp/char-gpt", overrides=[f"data.paths=[{corpus_file}]", *overrides]))

    assert plan("trainer.precision=bf16-mixed").config["optimizer"]["fused"] is False
    assert plan("trainer.precision=bf16-mixed", "trainer.gradient_clip_val=null").config["optimizer"]["fused"] is True
    assert plan("trainer.precision=32-true").config["optimizer"]["fused"] is True  # 32-true clips a fused optimizer
    with pytest.raises(ConfigError, match=r"optimizer\.fused=true cannot be combined with trainer\.gradient_clip_val"):
        plan("trainer.precision=bf16-mixed", "optimizer.fused=true")
    tiny = ["model.n_layer=1", "model.d_model=32", "model.n_head=2", "data.context_length=32", "data.max_chars=20000"]
    tiny.append("data.eval_stride=16")
    steps = ["trainer.max_steps=3", "trainer.val_check_interval=3", "trainer.precision=bf16-mixed"]
    result = train_run(*tiny, *steps, f"data.paths=[{corpus_file}]", recipe="nlp/char-gpt", root=tmp_path)
    assert result.summary["status"] == "completed"
