"""The CTC speech-recognition task: CTC loss, greedy / beam / lexicon+LM decoding, WER and CER via torchmetrics."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any, Literal

import lightning as L
import torch
import torch.nn.functional as F
from annotated_types import Ge
from torch import nn
from torchmetrics.text import CharErrorRate, WordErrorRate

from engine import ConfigError
from engine.data import sample_batch
from engine.tasks import eval_mode
from engine_speech.lexicon import NGram, lexicon_decode
from engine_speech.models import decode

DECODERS = ("greedy", "beam", "lexicon")
DEFAULT_BEAM = {"greedy": 1, "beam": 8, "lexicon": 16}


def check_decoder(decoder: str, beam_width: int | None, lexicon: list[str] | None, where: str = "task.decoder") -> None:
    """One-line errors for a decoder that cannot work."""
    if decoder not in DECODERS:
        import difflib

        close = difflib.get_close_matches(str(decoder), DECODERS, n=1)
        hint = f"did you mean '{close[0]}'? " if close else ""
        raise ConfigError(f"{where}: unknown decoder '{decoder}'", hint=f"{hint}choose one of {', '.join(DECODERS)}")
    if beam_width is not None and beam_width < 1:
        raise ConfigError(f"beam width must be >= 1, got {beam_width}")
    if decoder == "lexicon" and not lexicon:
        raise ConfigError(
            "the lexicon decoder needs a word list: this data has no 'lexicon' fact",
            hint="set task.lexicon='[word, ...]' (speech.spoken_digits provides the digit words)",
        )


class CTCTask(L.LightningModule):
    """Speech recognition on ``((features, lengths), (char ids, lengths))`` batches with a CTC loss.

    The model returns ``(log-probabilities [B, T, vocab], output lengths [B])`` (blank = 0).
    Logs ``train/loss``; per evaluated split ``loss``, ``wer`` (word error rate), ``cer`` (character
    error rate) and ``exact`` (fraction of utterances transcribed exactly): ``val/wer``, ``test/cer`` ...

    Args:
        vocabulary: the characters of ids 1.. (from the data).
        decoder: greedy (best path), beam (CTC prefix beam search) or lexicon (prefix beam search over
            the lexicon's words with a word n-gram estimated on the training transcripts).
        beam_width: beams of the beam and lexicon decoders (default 8 and 16); greedy with a width > 1 is beam.
        lexicon: the words the lexicon decoder may output (from the data's ``lexicon`` fact).
        lm_order: order of the word n-gram (1-3).
        lm_weight: weight of the n-gram log-probability.
        word_bonus: log-score added per word (balances the n-gram's pull towards fewer words).
    """

    def __init__(
        self,
        model: nn.Module,
        optimizer: Callable[..., torch.optim.Optimizer],
        vocabulary: list[str],
        scheduler: Callable[..., Any] | None = None,
        decoder: Literal["greedy", "beam", "lexicon"] = "greedy",
        beam_width: Annotated[int, Ge(1)] | None = None,
        lexicon: list[str] | None = None,
        lm_order: Annotated[int, Ge(1)] = 2,
        lm_weight: float = 0.5,
        word_bonus: float = 1.0,
    ) -> None:
        super().__init__()
        check_decoder(decoder, beam_width, lexicon)
        if not 1 <= lm_order <= 3:
            raise ConfigError(f"task.lm_order must be 1, 2 or 3, got {lm_order}")
        self.model = model
        self.optimizer_factory, self.scheduler_factory = optimizer, scheduler
        self.vocabulary, self.decoder, self.beam_width = list(vocabulary), decoder, beam_width
        self.lexicon = list(lexicon) if lexicon and len(lexicon) <= 2000 else None  # a dense n-gram table
        self.lm_weight, self.word_bonus = lm_weight, word_bonus
        if self.lexicon:
            self.lm = NGram(self.lexicon, lm_order)
            self.register_buffer("lm_counts", self.lm.counts.float())  # saved with the weights
        self.wer = nn.ModuleDict({s: WordErrorRate() for s in ("val", "test")})
        self.cer = nn.ModuleDict({s: CharErrorRate() for s in ("val", "test")})
        self.greedy_wer = nn.ModuleDict({s: WordErrorRate() for s in ("val", "test")})

    @property
    def primary_metric(self) -> tuple[str, str]:
        """Speech recognition is judged by its word error rate."""
        return ("wer", "min")

    # ------------------------------------------------------------------ checks
    def check_data(self, datamodule: Any) -> None:
        """Two training samples through the model: wrong data or a misfit model fail here, in one line.

        Also counts the word n-grams of the training transcripts for the lexicon decoder.
        """
        batch = sample_batch(datamodule)
        targets = getattr(getattr(datamodule, "splits", {}).get("train"), "targets", None)
        if self.lexicon and targets is not None and float(self.lm_counts.sum()) == 0:
            self.lm.add("".join(self.vocabulary[i - 1] for i in t.tolist()).split() for t in targets)
            self.lm_counts.copy_(self.lm.counts.float())
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

    def transcribe(self, log_probs: torch.Tensor, lengths: torch.Tensor, decoder: str | None = None) -> list[str]:
        """Transcripts with ``decoder`` (default: the task's)."""
        decoder = decoder or self.decoder
        width = self.beam_width or DEFAULT_BEAM[decoder]
        if decoder == "lexicon":
            check_decoder(decoder, width, self.lexicon)
            lm = NGram(self.lexicon, self.lm.order, self.lm_counts)  # type: ignore[arg-type]
            return lexicon_decode(
                log_probs,
                lengths,
                self.vocabulary,
                self.lexicon,
                lm,
                width,
                self.lm_weight,
                self.word_bonus,  # type: ignore[arg-type]
            )
        return decode(log_probs, lengths, self.vocabulary, width)

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
        if self.decoder != "greedy":  # greedy beside it, from the same outputs
            self.greedy_wer[split].update(self.transcribe(log_probs, out_lens, "greedy"), refs)
            self.log(f"{split}/wer_greedy", self.greedy_wer[split], batch_size=n)

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
