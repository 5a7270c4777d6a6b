"""``nlp.extractive_qa``: train start/end logits with cross-entropy; score the best span with SQuAD's EM and F1.

Per evaluated split: ``loss``, ``exact_match`` and ``f1`` (means over questions, 0-1, scored as SQuAD's script
does on the context's own text: the predicted span's characters ``context[offset(start):offset(end)]`` against
every gold answer, after the official normalisation), and ``span_accuracy`` (both token positions right).
The best span maximises ``start logit + end logit`` with ``start <= end < start + max_answer_tokens``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
import torchmetrics
from torch import nn

from engine import ConfigError
from engine.data import sample_batch
from engine.tasks import configure_optimizers, eval_mode
from engine_nlp.qa.data import ANSWERS
from engine_nlp.qa.squad import exact_match, f1

METRICS = ("exact_match", "f1", "span_accuracy")


def best_spans(logits: torch.Tensor, max_answer_tokens: int) -> torch.Tensor:
    """``[B, 2]`` start and end of the best span (``start <= end < start + max_answer_tokens``)."""
    start, end = logits[..., 0], logits[..., 1]
    t = logits.shape[1]
    scores = start[:, :, None] + end[:, None, :]
    i = torch.arange(t, device=logits.device)
    allowed = (i[None, :] >= i[:, None]) & (i[None, :] < i[:, None] + max_answer_tokens)
    flat = scores.masked_fill(~allowed, float("-inf")).flatten(1).argmax(1)
    return torch.stack([flat // t, flat % t], 1)


def span_texts(spans: torch.Tensor, offsets: torch.Tensor, contexts: list[str]) -> list[str]:
    """The context's characters each span covers (empty for a span outside the context)."""
    out = []
    for (s, e), where, context in zip(spans.tolist(), offsets.tolist(), contexts, strict=True):
        a, b = where[s][0], where[e][1]
        out.append(context[a:b].strip() if a >= 0 and b >= 0 else "")
    return out


class ExtractiveQATask(L.LightningModule):
    """Answer spans from ``(ids [B, T], {"span", "offsets", "context", "answers"})`` batches (`engine_nlp.qa.data`).

    Args:
        max_answer_tokens: the longest span predicted.
    """

    def __init__(
        self,
        model: nn.Module,
        optimizer: Callable[..., torch.optim.Optimizer],
        scheduler: Callable[..., Any] | None = None,
        max_answer_tokens: int = 30,
    ) -> None:
        super().__init__()
        if max_answer_tokens < 1:
            raise ConfigError(f"task.max_answer_tokens must be >= 1, got {max_answer_tokens}")
        self.model, self.optimizer_factory, self.scheduler_factory = model, optimizer, scheduler
        self.max_answer_tokens = max_answer_tokens
        self.means = nn.ModuleDict(
            {f"{s}_{m}": torchmetrics.MeanMetric() for s in ("val", "test") for m in (*METRICS, "loss")}
        )

    @property
    def primary_metric(self) -> tuple[str, str]:
        """SQuAD's headline figure."""
        return ("f1", "max")

    def check_data(self, datamodule: Any) -> None:
        """One forward pass: data that is not QA spans, or a model giving no start/end logits, fails here."""
        x, y = sample_batch(datamodule)
        if not (isinstance(x, torch.Tensor) and x.dim() == 2 and isinstance(y, dict) and "span" in y):
            raise ConfigError(
                "the extractive QA task needs question/context ids with answer spans; this data yields "
                f"{type(y).__name__} targets",
                hint="use data=nlp.squad or data=nlp.reading_comprehension",
            )
        with eval_mode(self.model):
            out = self.model(x)
        if not isinstance(out, torch.Tensor) or out.shape != (*x.shape, 2):
            raise ConfigError(
                f"the model returns {tuple(getattr(out, 'shape', ()))} for ids {tuple(x.shape)}; extractive QA "
                "needs start/end logits [B, T, 2]",
                hint="use model=nlp.span_qa",
            )

    def _loss(self, out: torch.Tensor, span: torch.Tensor) -> torch.Tensor:
        return (F.cross_entropy(out[..., 0], span[:, 0]) + F.cross_entropy(out[..., 1], span[:, 1])) / 2

    def training_step(self, batch: Any, _: int) -> torch.Tensor:
        x, y = batch
        loss = self._loss(self.model(x), y["span"])
        self.log("train/loss", loss, prog_bar=True)
        return loss

    def _evaluate(self, batch: Any, split: str) -> None:
        x, y = batch
        out = self.model(x)
        spans = best_spans(out.float(), self.max_answer_tokens)
        texts = span_texts(spans.cpu(), y["offsets"].cpu(), list(y["context"]))
        golds = [a.split(ANSWERS) for a in y["answers"]]
        n = len(x)
        values = {
            "exact_match": sum(exact_match(p, g) for p, g in zip(texts, golds, strict=True)) / n,
            "f1": sum(f1(p, g) for p, g in zip(texts, golds, strict=True)) / n,
            "span_accuracy": float((spans == y["span"]).all(1).float().mean()),
            "loss": float(self._loss(out, y["span"])),
        }
        for name, value in values.items():
            metric = self.means[f"{split}_{name}"]
            metric.update(torch.tensor(value), n)
            self.log(f"{split}/{name}", metric, prog_bar=name == "f1", batch_size=n)

    def validation_step(self, batch: Any, _: int) -> None:
        self._evaluate(batch, "val")

    def test_step(self, batch: Any, _: int) -> None:
        self._evaluate(batch, "test")

    def on_test_epoch_end(self) -> None:
        """The data's baselines beside the test figures (``test/blind_exact_match`` …) when it has them."""
        source = getattr(getattr(self.trainer, "datamodule", None), "source", None)
        if callable(getattr(source, "baseline_scores", None)):
            for name, value in source.baseline_scores("test").items():
                self.log(f"test/{name}", value)

    def configure_optimizers(self) -> Any:
        return configure_optimizers(self, self.optimizer_factory, self.scheduler_factory)
