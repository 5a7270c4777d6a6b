"""The CTC speech-recognition task: CTC loss, greedy (or beam) decoding, WER and CER via torchmetrics."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from torch import nn
from torchmetrics.text import CharErrorRate, WordErrorRate

from engine.data import sample_batch
from engine.errors import ConfigError
from engine.tasks import eval_mode
from engine_speech.models import decode


class CTCTask(L.LightningModule):
    """Speech recognition on ``((features, lengths), (char ids, lengths))`` batches with a CTC loss.

    The model returns ``(log-probabilities [B, T, vocab], output lengths [B])`` (blank = 0).
    Logs ``train/loss``; per evaluated split ``loss``, ``wer`` (word error rate), ``cer`` (character
    error rate) and ``exact`` (fraction of utterances transcribed exactly): ``val/wer``, ``test/cer`` ...

    Args:
        vocabulary: the characters of ids 1.. (from the data).
        beam_width: 1 for greedy decoding, more for CTC prefix beam search (evaluation and transcribe).
    """

    def __init__(
        self,
        model: nn.Module,
        optimizer: Callable[..., torch.optim.Optimizer],
        vocabulary: list[str],
        scheduler: Callable[..., Any] | None = None,
        beam_width: int = 1,
    ) -> None:
        super().__init__()
        if beam_width < 1:
            raise ConfigError(f"task.beam_width must be >= 1, got {beam_width}")
        self.model = model
        self.optimizer_factory, self.scheduler_factory = optimizer, scheduler
        self.vocabulary, self.beam_width = list(vocabulary), beam_width
        self.wer = nn.ModuleDict({s: WordErrorRate() for s in ("val", "test")})
        self.cer = nn.ModuleDict({s: CharErrorRate() for s in ("val", "test")})

    @property
    def primary_metric(self) -> tuple[str, str]:
        """Speech recognition is judged by its word error rate."""
        return ("wer", "min")

    # ------------------------------------------------------------------ checks
    def check_data(self, datamodule: Any) -> None:
        """Two training samples through the model: wrong data or a misfit model fail here, in one line."""
        batch = sample_batch(datamodule)
        if not (isinstance(batch[1], (tuple, list)) and len(batch[1]) == 2):
            shape = tuple(batch[1].shape) if isinstance(batch[1], torch.Tensor) else type(batch[1]).__name__
            raise ConfigError(
                "speech.ctc needs transcribed batches ((features, lengths), (char ids, lengths)); this data yields "
                f"targets of shape {shape}",
                hint="use data=speech.spoken_digits data.mode=strings, or data=speech.transcribed",
            )
        try:
            with eval_mode(self.model):
                out = self.model(batch[0])
        except Exception as exc:
            raise ConfigError(f"the model does not fit the data: {type(exc).__name__}: {exc}") from exc
        if not (isinstance(out, tuple) and len(out) == 2 and out[0].dim() == 3):
            raise ConfigError(
                "speech.ctc needs a model returning (log-probs [B, T, vocab], lengths)", hint="use model=speech.ctc_asr"
            )
        if out[0].shape[-1] != len(self.vocabulary) + 1:
            raise ConfigError(
                f"the model outputs {out[0].shape[-1]} symbols but the vocabulary has {len(self.vocabulary)} + blank",
                hint="leave model.vocab_size unset so the data fills it",
            )

    # ------------------------------------------------------------------ steps
    def forward(self, inputs: Any) -> tuple[torch.Tensor, torch.Tensor]:
        return self.model(inputs)

    def _loss(self, batch: Any) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        inputs, (y, y_lens) = batch
        log_probs, out_lens = self.model(inputs)
        loss = F.ctc_loss(
            log_probs.transpose(0, 1).float(), y, out_lens, y_lens, blank=0, reduction="mean", zero_infinity=True
        )
        return loss, log_probs, out_lens

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        loss, _, _ = self._loss(batch)
        self.log("train/loss", loss, prog_bar=True, batch_size=len(batch[1][0]))
        return loss

    def transcribe(self, log_probs: torch.Tensor, lengths: torch.Tensor) -> list[str]:
        return decode(log_probs, lengths, self.vocabulary, self.beam_width)

    def _evaluate(self, batch: Any, split: str) -> None:
        loss, log_probs, out_lens = self._loss(batch)
        y, y_lens = batch[1]
        hyps = self.transcribe(log_probs, out_lens)
        refs = [
            " ".join("".join(self.vocabulary[i - 1] for i in t[:n].tolist()).split())
            for t, n in zip(y, y_lens.tolist(), strict=True)
        ]
        n = len(refs)
        self.wer[split].update(hyps, refs)
        self.cer[split].update(hyps, refs)
        exact = torch.tensor(sum(h == r for h, r in zip(hyps, refs, strict=True)) / n)
        self.log(f"{split}/loss", loss, prog_bar=True, batch_size=n)
        self.log(f"{split}/exact", exact, batch_size=n)
        self.log(f"{split}/wer", self.wer[split], prog_bar=True, batch_size=n)
        self.log(f"{split}/cer", self.cer[split], batch_size=n)

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        self._evaluate(batch, "val")

    def test_step(self, batch: Any, batch_idx: int) -> None:
        self._evaluate(batch, "test")

    def predict_step(self, batch: Any, batch_idx: int) -> list[str]:
        inputs = batch[0] if isinstance(batch, (list, tuple)) and isinstance(batch[0], (list, tuple)) else batch
        log_probs, lengths = self.model(inputs)
        return self.transcribe(log_probs, lengths)

    def configure_optimizers(self) -> Any:
        from engine.tasks import configure_optimizers

        return configure_optimizers(self, self.optimizer_factory, self.scheduler_factory)
