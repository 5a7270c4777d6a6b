"""``nlp.instruct``: the language-modelling task on instruction data, judged by exact-match accuracy of its replies.

Training is next-token cross-entropy on the replies (targets ``-100`` elsewhere, see `engine_nlp.instructions`).
The test split is also answered by greedy decoding: ``test/exact_match`` is the fraction of replies equal to
the reference (surrounding whitespace ignored), measured on the weights before fine-tuning too
(``test/exact_match_before``, at the start of the run) so one run shows what it learned.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from engine.tasks import eval_mode
from engine_nlp.task import LanguageModelingTask


def exact_match(
    network: Callable[..., Any], source: Any, split: str = "test", max_new_tokens: int = 16, limit: int | None = None
) -> tuple[float, list[tuple[str, str, str]]]:
    """Exact-match accuracy of greedy replies on ``source``'s ``split`` examples, and (prompt, reply, reference).

    Decoding (`engine_nlp.generation`: the model's KV cache when it offers one, ``CachedDecoding``, as ``nlp.gpt``
    and ``hf.causal_lm`` do) stops a reply at the end marker (``source.end``'s ids); every reply may run to
    ``max_new_tokens`` or to the longest reference plus its end marker, whichever is longer, so a correct reply is
    never cut short (and one that does not stop is wrong)."""
    from engine_nlp import generation

    examples = source.examples.get(split) or []
    examples = examples[:limit] if limit else examples
    if not examples:
        return float("nan"), []
    prompts = [source.format_chat(m[:-1]) for m in examples]
    refs = [m[-1]["content"].strip() for m in examples]
    end_ids = source.tokenizer.encode(source.end) if source.end else []
    budget = max([max_new_tokens] + [len(source.tokenizer.encode(r)) + len(end_ids) for r in refs])
    ids = [source.tokenizer.encode(p)[-max(1, source.context_length - budget) :] for p in prompts]
    opts = generation.check_options({"max_new_tokens": budget, "temperature": 0, "stop": [end_ids] if end_ids else []})
    decoder = generation.Decoder(network, ids, [opts] * len(ids), source.context_length)
    with torch.inference_mode():
        while not decoder.finished:
            decoder.step()
    generated = [generation.strip_stop(r.out, opts["stop"]) for r in decoder.rows]
    replies = [_cut(source.decode_tokens(g), source.end) for g in generated]
    hits = sum(r == ref for r, ref in zip(replies, refs, strict=True))
    return hits / len(examples), list(zip(prompts, replies, refs, strict=True))


def _cut(text: str, end: str) -> str:
    return (text.split(end, 1)[0] if end else text).strip()


class InstructionTask(LanguageModelingTask):
    """Next-token prediction on instruction data, plus exact-match accuracy of greedy replies on the test split.

    Args:
        compile: run the training forward pass through ``torch.compile``.
        max_new_tokens: tokens generated per reply when measuring exact match.
        eval_limit: measure exact match on at most this many test examples (None: all).
        measure_before: also measure it before training (``test/exact_match_before``).
    """

    def __init__(
        self,
        model: nn.Module,
        optimizer: Callable[..., torch.optim.Optimizer],
        scheduler: Callable[..., Any] | None = None,
        compile: bool = False,
        max_new_tokens: int = 16,
        eval_limit: int | None = 200,
        measure_before: bool = True,
    ) -> None:
        super().__init__(model, optimizer, scheduler, compile)
        self.max_new_tokens, self.eval_limit, self.measure_before = max_new_tokens, eval_limit, measure_before
        self.exact_match_before: float | None = None

    @property
    def primary_metric(self) -> tuple[str, str]:
        return ("exact_match", "max")

    def _source(self) -> Any:
        datamodule = getattr(self.trainer, "datamodule", None)
        return getattr(datamodule, "source", None)

    def _measure(self) -> float | None:
        source = self._source()
        if source is None or not hasattr(source, "format_chat"):
            return None
        with eval_mode(self.model):
            value, _ = exact_match(self.model, source, "test", self.max_new_tokens, self.eval_limit)
        return value

    def on_fit_start(self) -> None:
        if self.measure_before and self.exact_match_before is None:
            self.exact_match_before = self._measure()
            if self.exact_match_before is not None:
                print(f"test/exact_match before fine-tuning: {self.exact_match_before:.3f}", file=sys.stderr)

    def on_validation_epoch_end(self) -> None:
        super().on_validation_epoch_end()
        if not self.trainer.sanity_checking:
            value = self._measure_split("val")
            if value is not None:
                self.log("val/exact_match", value)

    def _measure_split(self, split: str) -> float | None:
        source = self._source()
        if source is None or not hasattr(source, "format_chat") or not source.examples.get(split):
            return None
        with eval_mode(self.model):
            return exact_match(self.model, source, split, self.max_new_tokens, self.eval_limit)[0]

    def on_test_epoch_end(self) -> None:
        super().on_test_epoch_end()
        value = self._measure()
        if value is not None:
            self.log("test/exact_match", value)
        if self.exact_match_before is not None:
            self.log("test/exact_match_before", self.exact_match_before)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["exact_match_before"] = self.exact_match_before

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        self.exact_match_before = checkpoint.get("exact_match_before")

    def evaluate_run(
        self, datamodule: Any, split: str = "test", max_new_tokens: int = 16, limit: int | None = None
    ) -> dict[str, float]:
        """``engine evaluate RUN``: exact-match accuracy of greedy replies on ``split``."""
        with eval_mode(self.model):
            value, _ = exact_match(self.model, datamodule.source, split, max_new_tokens, limit)
        return {f"{split}/exact_match": value}
