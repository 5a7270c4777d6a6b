"""The language-modelling task: next-token cross-entropy, perplexity, bits per token, tokens/s."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterator
from typing import Annotated, Any

import lightning as L
import torch
import torch.nn.functional as F
import torchmetrics
from annotated_types import Gt
from torch import nn

from engine import ConfigError
from engine.data import sample_batch
from engine.tasks import eval_mode


class LanguageModelingTask(L.LightningModule):
    """Next-token prediction on ``(tokens [B, T], next tokens [B, T])`` batches.

    Logs ``train/loss`` and ``train/tokens_per_s`` every step, and per evaluated split the token-weighted
    mean ``loss`` (nats per token), ``perplexity`` (exp of it) and ``bits_per_token`` (``loss / ln 2``):
    ``val/loss``, ``val/perplexity``, ``val/bits_per_token``, ``test/...``.

    Text in, text out (`engine.protocols.DeclaresIO`): ``generate`` / ``generate_stream`` continue prompts of
    token ids (any length up to the context) over the model or a deployed artifact (`engine_nlp.generation`).

    Args:
        compile: run the training forward pass through ``torch.compile`` (weights and checkpoints unchanged).
        dynamic_eval_lrs: after the test, also score the test text with dynamic evaluation (the model keeps
            learning from the text as it reads it, as a compressor does; `engine_nlp.dynamic`) at the learning
            rate of these that scores the validation text best: ``test/dynamic_bits_per_char`` beside the static
            ``test/bits_per_char``, ``val/dynamic_bits_per_char``, ``test/dynamic_lr``. Empty: not measured.
    """

    input_kind = "text"
    output_kind = "text"

    def __init__(
        self,
        model: nn.Module,
        optimizer: Callable[..., torch.optim.Optimizer],
        scheduler: Callable[..., Any] | None = None,
        compile: bool = False,
        dynamic_eval_lrs: list[Annotated[float, Gt(0)]] = (),
    ) -> None:
        super().__init__()
        self.model = model
        self.optimizer_factory = optimizer
        self.scheduler_factory = scheduler
        self.nll = nn.ModuleDict({s: torchmetrics.MeanMetric() for s in ("val", "test")})
        self.compile, self.dynamic_eval_lrs = compile, list(dynamic_eval_lrs)
        self.__dict__["_train_forward"] = torch.compile(model) if compile else model  # not a registered submodule
        self._t0: float | None = None

    @property
    def primary_metric(self) -> tuple[str, str]:
        """Language models are judged by their perplexity."""
        return ("perplexity", "min")

    # ------------------------------------------------------------------ checks
    def check_data(self, datamodule: Any) -> None:
        """One forward pass on two training samples: a model or data that does not fit fails here, clearly."""
        x, y = sample_batch(datamodule)
        if not (isinstance(x, torch.Tensor) and isinstance(y, torch.Tensor) and x.dim() == 2 and y.shape == x.shape):
            raise ConfigError(
                "the language-modelling task needs (tokens [B, T], next tokens [B, T]) batches; this data yields "
                f"inputs of shape {_shape(x)} and targets of shape {_shape(y)}",
                hint="use data=nlp.text_files (or the supervised task for labelled texts)",
            )
        try:
            with eval_mode(self.model):
                out = self.model(x)
        except Exception as exc:
            raise ConfigError(f"the model does not fit the data: {type(exc).__name__}: {exc}") from exc
        if not isinstance(out, torch.Tensor) or out.dim() != 3 or out.shape[:2] != x.shape:
            raise ConfigError(
                f"the model returns {_shape(out)} for tokens of shape {tuple(x.shape)}; "
                "a language model returns next-token logits [B, T, vocab]",
                hint="use model=nlp.gpt",
            )
        if int(y.max()) >= out.shape[-1]:
            raise ConfigError(
                f"token id {int(y.max())} is outside the model's vocabulary of {out.shape[-1]}",
                hint="leave model.vocab_size unset so the data fills it",
            )

    # ------------------------------------------------------------------ steps
    def forward(self, idx: torch.Tensor) -> torch.Tensor:
        return self.model(idx)

    @staticmethod
    def _loss(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), y.reshape(-1))

    def on_train_batch_start(self, batch: Any, batch_idx: int) -> None:
        self._t0 = time.perf_counter()

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        x, y = batch
        loss = self._loss(self.__dict__["_train_forward"](x), y)
        self.log("train/loss", loss, prog_bar=True)
        return loss

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        if self._t0 is not None:
            dt = time.perf_counter() - self._t0
            self.log("train/tokens_per_s", batch[0].numel() / max(dt, 1e-9), prog_bar=True)

    def _evaluate(self, batch: Any, split: str) -> None:
        x, y = batch
        loss = self._loss(self.model(x), y)
        self.nll[split].update(loss, weight=int((y != -100).sum()))  # the targets the loss scored (-100: ignored)

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        self._evaluate(batch, "val")

    def test_step(self, batch: Any, batch_idx: int) -> None:
        self._evaluate(batch, "test")

    def _log_epoch(self, split: str) -> None:
        metric = self.nll[split]
        if metric.update_count == 0:
            return
        nll = metric.compute()
        metric.reset()
        self.log(f"{split}/loss", nll, prog_bar=True)
        self.log(f"{split}/perplexity", torch.exp(nll))
        self.log(f"{split}/bits_per_token", nll / math.log(2))
        for name, value in self._per_character(split, float(nll)).items():
            self.log(f"{split}/{name}", value)

    def _per_character(self, split: str, nll: float) -> dict[str, float]:
        """``bits_per_char`` (the loss over the split's tokens, per character of its text) and the compressors'
        (``xz_bits_per_char``: ``xz -9e``, ``zstd_bits_per_char``: ``zstd -19``, the text compressed alone), when
        the data tells its characters (``facts["characters"]``) and its text (``split_text``)."""
        from engine_nlp.baselines import per_character

        trainer = self._trainer  # None outside a Trainer
        datamodule = getattr(trainer, "datamodule", None) if trainer is not None else None
        return per_character(datamodule, split, nll, self.__dict__.setdefault("_compressed", {}))

    def on_validation_epoch_end(self) -> None:
        self._log_epoch("val")

    def on_test_epoch_end(self) -> None:
        self._log_epoch("test")
        if self.dynamic_eval_lrs and not getattr(self._trainer, "fast_dev_run", False):  # not in a smoke run
            self._log_dynamic()

    def _log_dynamic(self) -> None:
        """Dynamic evaluation's figures (see ``dynamic_eval_lrs``), when the data has token ids and characters."""
        from engine_nlp.baselines import bits
        from engine_nlp.dynamic import dynamic_figures

        datamodule = getattr(self._trainer, "datamodule", None) if self._trainer is not None else None
        source, facts = getattr(datamodule, "source", None), getattr(datamodule, "facts", None) or {}
        ids, chars = getattr(source, "ids", None), facts.get("characters") or {}
        if not isinstance(ids, dict) or not chars:
            return
        context = int(getattr(self.model, "context_length", 0) or facts["context_length"])
        stride = getattr(source, "eval_stride", None) or context
        figures = dynamic_figures(self.model, ids, context, stride, self.dynamic_eval_lrs)
        for split in ("val", "test") if figures else ():
            per_char = bits(figures[f"{split}/dynamic_loss"]) * len(ids[split]) / chars[split]
            self.log(f"{split}/dynamic_bits_per_char", per_char)
        if figures:
            self.log("test/dynamic_lr", figures["dynamic_lr"])

    def predict_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        x = batch[0] if isinstance(batch, (list, tuple)) else batch
        return self.model(x)[:, -1].softmax(-1)  # next-token distribution after each sequence

    # ------------------------------------------------------------------ generation (Generates)
    def _limits(self, network: Any) -> tuple[int | None, int | None]:
        """The vocabulary size and context length of ``network`` (or of this task's model: an artifact's)."""
        found = []
        for name in ("vocab_size", "context_length"):
            value = getattr(network, name, None) or getattr(self.model, name, None)
            found.append(int(value) if isinstance(value, int) else None)
        return found[0], found[1]

    def generate(self, network: Callable[..., Any], inputs: list[list[int]], **options: Any) -> list[list[int]]:
        """The ids generated after each prompt (stop sequence excluded). Options: ``max_new_tokens`` (64),
        ``temperature`` (1.0; 0 greedy), ``top_k`` (0: all), ``top_p`` (1.0), ``stop`` (token ids or id
        sequences), ``seed`` (None: random; a seed makes each prompt's tokens the same alone or batched)."""
        from engine_nlp import generation

        opts = generation.check_options(options)
        vocab, context = self._limits(network)
        inputs = generation.check_inputs(inputs, vocab, context)
        decoder = generation.Decoder(network, inputs, [opts] * len(inputs), context)
        with _eval(network):
            while not decoder.finished:
                decoder.step()
        return [generation.strip_stop(r.out, opts["stop"]) for r in decoder.rows]

    def generate_stream(self, network: Callable[..., Any], ids: list[int], **options: Any) -> Iterator[int]:
        """``generate`` of one prompt, a token at a time as each is sampled (``engine serve``'s streams).

        Options and prompt are checked here, before the first token is asked for (a server answers 4xx)."""
        from engine_nlp import generation

        opts = generation.check_options(options)
        vocab, context = self._limits(network)
        (ids,) = generation.check_inputs([ids], vocab, context)

        def tokens() -> Iterator[int]:
            with _eval(network):
                yield from generation.stream(network, ids, opts, context)

        return tokens()

    def decoder(self, network: Callable[..., Any], inputs: list[list[int]], options: list[dict[str, Any]]) -> Any:
        """A `engine_nlp.generation.Decoder` over these prompts, one option dict each: ``step()`` advances them
        all by a token (a server's continuous batching: several decoders advance in turn), ``cancel(i)``."""
        from engine_nlp import generation

        opts = [generation.check_options(o) for o in options]
        vocab, context = self._limits(network)
        inputs = generation.check_inputs(inputs, vocab, context)
        if isinstance(network, nn.Module) and network.training:
            network.eval()
        return generation.Decoder(network, inputs, opts, context)

    def network_inputs(self, inputs: list[list[int]]) -> tuple[Any, ...]:
        """``(ids [B, T],)``: the prompts right-padded with id 0 to the longest (causal: padding is never seen)."""
        width = max(len(ids) for ids in inputs)
        return (torch.tensor([list(ids) + [0] * (width - len(ids)) for ids in inputs], dtype=torch.long),)

    def configure_optimizers(self) -> Any:
        from engine.tasks import configure_optimizers

        return configure_optimizers(self, self.optimizer_factory, self.scheduler_factory)


def _eval(network: Any) -> Any:
    """Eval mode for an ``nn.Module`` network (restored after), nothing for another callable."""
    import contextlib

    return eval_mode(network) if isinstance(network, nn.Module) else contextlib.nullcontext()


def _shape(value: Any) -> Any:
    return tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
