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


@torch.no_grad()
def greedy(network: Callable[..., Any], prompts: list[list[int]], max_new_tokens: int, context: int) -> list[list[int]]:
    """Greedy continuations of ``prompts``, prompts of equal length decoded together (no padding), full recompute."""
    out: list[list[int]] = [[] for _ in prompts]
    groups: dict[int, list[int]] = {}
    for i, p in enumerate(prompts):
        groups.setdefault(len(p), []).append(i)
    for _, members in sorted(groups.items()):
        idx = torch.tensor([prompts[i] for i in members], dtype=torch.long)
        for _ in range(max_new_tokens):
            logits = network(idx[:, -context:])
            idx = torch.cat([idx, logits[:, -1].float().argmax(-1, keepdim=True)], 1)
        for row, i in zip(idx.tolist(), members, strict=True):
            out[i] = row[len(prompts[i]) :]
    return out


def exact_match(
    network: Callable[..., Any], source: Any, split: str = "test", max_new_tokens: int = 16, limit: int | None = None
) -> tuple[float, list[tuple[str, str, str]]]:
    """Exact-match accuracy of greedy replies on ``source``'s ``split`` examples, and (prompt, reply, reference)."""
    examples = source.examples.get(split) or []
    examples = examples[:limit] if limit else examples
    if not examples:
        return float("nan"), []
    prompts = [source.format_chat(m[:-1]) for m in examples]
    ids = [source.tokenizer.encode(p)[-(source.context_length - max_new_tokens) :] for p in prompts]
    end_ids = source.tokenizer.encode(source.end) if source.end else []
    generated = greedy(network, ids, max_new_tokens, source.context_length)
    replies = [_cut(source.decode_tokens(_until(g, end_ids)), source.end) for g in generated]
    refs = [m[-1]["content"].strip() for m in examples]
    hits = sum(r == ref for r, ref in zip(replies, refs, strict=True))
    return hits / len(examples), list(zip(prompts, replies, refs, strict=True))


def _until(ids: list[int], end: list[int]) -> list[int]:
    """``ids`` up to the first occurrence of the ``end`` ids (a special end-of-turn token is dropped when decoded,
    so the reply is cut on ids before it is cut on text)."""
    n = len(end)
    for i in range(len(ids) - n + 1) if n else ():
        if ids[i : i + n] == end:
            return ids[:i]
    return ids


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
