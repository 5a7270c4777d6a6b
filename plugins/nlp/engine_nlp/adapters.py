"""``model.init_from`` adapters: other state dicts mapped onto the plugin's models (applied by the techniques plugin).

- `hf_gpt2_to_gpt`: a Hugging Face ``GPT2LMHeadModel`` (or ``GPT2Model``) state dict -> ``nlp.gpt``.
  GPT-2 is a pre-LayerNorm decoder with learned positions, biases, a 4x GELU (tanh approximation) MLP,
  LayerNorm eps 1e-5 and an output layer tied to the token embedding: ``nlp.gpt`` with ``bias=true``,
  ``positions=learned``, ``tie_weights=true``, ``mlp_ratio=4`` computes the same function. Its linear layers
  are ``Conv1D`` (weights stored ``[in, out]``), transposed here to ``nn.Linear``'s ``[out, in]``.
- `gpt_to_classifier`: an ``nlp.gpt`` state dict (a pre-training run) -> ``nlp.transformer_classifier``:
  the same blocks (one ``Block`` class; causal vs bidirectional attention is only the mask), the token
  embedding, the positions (shifted one place for the [CLS] slot) and the final LayerNorm. The LM head is
  dropped; the [CLS] vector and the classification head start fresh.

Each returns ``None`` for a state dict that is not its format, so the next adapter (or plain name matching)
gets it. Mistakes that would otherwise surface as a shape error (another vocabulary, width, depth) are
reported as such, with the setting that fixes them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable

import torch
from torch import nn

from engine import ConfigError

State = dict[str, torch.Tensor]

_HF_BLOCK = {
    "ln_1.weight": "ln1.weight",
    "ln_1.bias": "ln1.bias",
    "attn.c_attn.weight": "attn.qkv.weight",
    "attn.c_attn.bias": "attn.qkv.bias",
    "attn.c_proj.weight": "attn.proj.weight",
    "attn.c_proj.bias": "attn.proj.bias",
    "ln_2.weight": "ln2.weight",
    "ln_2.bias": "ln2.bias",
    "mlp.c_fc.weight": "fc.weight",
    "mlp.c_fc.bias": "fc.bias",
    "mlp.c_proj.weight": "out.weight",
    "mlp.c_proj.bias": "out.bias",
}
_CONV1D = ("attn.c_attn.weight", "attn.c_proj.weight", "mlp.c_fc.weight", "mlp.c_proj.weight")
_HF_BUFFERS = ("attn.bias", "attn.masked_bias")  # causal-mask buffers of older transformers versions


def _blocks(keys: Iterable[str], prefix: str) -> int:
    """How many blocks ``prefix0.``, ``prefix1.`` … the keys name."""
    pattern = re.compile(rf"^{re.escape(prefix)}(\d+)\.")
    found = {int(m.group(1)) for k in keys if (m := pattern.match(k))}
    return max(found) + 1 if found else 0


def _vocab_error(theirs: int, ours: int, what: str, hint: str) -> ConfigError:
    return ConfigError(
        f"the weights have a {theirs}-token vocabulary, the data's tokenizer {ours}: {what}",
        hint=hint,
    )


def _check_shape(model: nn.Module, *, blocks: int, width: int, hidden: int, hint: str) -> None:
    """The model's depth, width and MLP width against the weights' (a clear message instead of a shape error)."""
    own_blocks = len(getattr(model, "blocks", ()))
    own_width = int(model.tok_emb.weight.shape[1])  # type: ignore[union-attr, index]
    own_hidden = int(model.blocks[0].fc.weight.shape[0]) if own_blocks else hidden  # type: ignore[index, union-attr]
    if own_width != width:
        raise ConfigError(f"the weights have width {width}, the model d_model {own_width}", hint=hint)
    if own_hidden != hidden:
        raise ConfigError(
            f"the weights' MLPs are {hidden} wide ({hidden // width} x {width}), the model's {own_hidden}",
            hint=f"set model.mlp_ratio={hidden // width}",
        )
    if own_blocks != blocks:
        raise ConfigError(f"the weights have {blocks} blocks, the model {own_blocks}", hint=hint)


# --------------------------------------------------------------------------- Hugging Face GPT-2 -> nlp.gpt


def hf_gpt2_to_gpt(state: State, model: nn.Module) -> tuple[State, list[str]] | None:
    """A Hugging Face GPT-2 state dict (``transformer.h.N.attn.c_attn.weight`` …) in ``nlp.gpt``'s keys."""
    prefix = "transformer." if "transformer.wte.weight" in state else ""
    required = ("wte.weight", "wpe.weight", "h.0.attn.c_attn.weight", "h.0.mlp.c_fc.weight", "ln_f.weight")
    if not all(prefix + k in state for k in required):
        return None
    sd = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
    wte, wpe = sd["wte.weight"], sd["wpe.weight"]
    vocab, width = wte.shape
    n_layer = _blocks(sd, "h.")
    hidden = int(sd["h.0.mlp.c_fc.weight"].shape[1])
    size = f"model.n_layer={n_layer} model.d_model={width} model.n_head=… (gpt2: 12, gpt2-medium: 16, gpt2-large: 20)"
    own_vocab = int(model.tok_emb.weight.shape[0])  # type: ignore[union-attr, index]
    if own_vocab != vocab:
        raise _vocab_error(
            vocab,
            own_vocab,
            "GPT-2's embedding rows are GPT-2's token ids and mean nothing to another tokenizer",
            "encode the data with GPT-2's own tokenizer: data.tokenizer_file=DIR/tokenizer.json (the file next to "
            "the Hugging Face weights)",
        )
    _check_shape(model, blocks=n_layer, width=width, hidden=hidden, hint=f"GPT-2's architecture: {size}")
    if getattr(model, "pos_emb", None) is None:
        raise ConfigError("GPT-2 has learned positions, the model rotary ones", hint="set model.positions=learned")
    if "blocks.0.attn.qkv.bias" not in model.state_dict():
        raise ConfigError(
            "GPT-2 has biases in its linear and LayerNorm layers, the model none", hint="set model.bias=true"
        )
    context = int(model.pos_emb.weight.shape[0])  # type: ignore[union-attr, index]
    if context > wpe.shape[0]:
        raise ConfigError(
            f"GPT-2 has {wpe.shape[0]} positions, the data's context_length is {context}",
            hint=f"set data.context_length (or data.max_length) to at most {wpe.shape[0]}",
        )
    mapped: State = {"tok_emb.weight": wte, "pos_emb.weight": wpe[:context]}
    notes = [f"pos_emb.weight: the first {context} of GPT-2's {wpe.shape[0]} positions"] if context < len(wpe) else []
    dropped = 0
    for key, value in sd.items():
        m = re.match(r"^h\.(\d+)\.(.+)$", key)
        if m and m.group(2) in _HF_BLOCK:
            value = value.t() if m.group(2) in _CONV1D else value
            mapped[f"blocks.{m.group(1)}.{_HF_BLOCK[m.group(2)]}"] = value
        elif m and m.group(2) in _HF_BUFFERS:
            dropped += 1
        elif key not in ("wte.weight", "wpe.weight"):
            mapped[key if key.startswith("ln_f.") else prefix + key] = value  # anything else: reported unexpected
    notes.append(f"{4 * n_layer} Conv1D weights transposed to nn.Linear's [out, in]")
    if dropped:
        notes.append(f"{dropped} causal-mask buffers (attn.bias) not needed: SDPA masks")
    tied = model.head.weight is model.tok_emb.weight  # type: ignore[union-attr]
    head = state.get("lm_head.weight")
    if head is not None and not torch.equal(head, wte) and tied:
        raise ConfigError("the weights' output layer is not tied to the embedding", hint="set model.tie_weights=false")
    mapped.pop("lm_head.weight", None)
    mapped["head.weight"] = wte if head is None else head
    return mapped, notes


# --------------------------------------------------------------------------- nlp.gpt -> nlp.transformer_classifier


def gpt_to_classifier(state: State, model: nn.Module) -> tuple[State, list[str]] | None:
    """An ``nlp.gpt`` state dict in ``nlp.transformer_classifier``'s keys (blocks, embeddings, final norm)."""
    keys = ("tok_emb.weight", "blocks.0.attn.qkv.weight", "blocks.0.fc.weight", "head.weight")
    if not all(k in state for k in keys) or "cls" in state or "head.bias" in state:
        return None
    if state["head.weight"].shape != state["tok_emb.weight"].shape:  # not an LM head
        return None
    vocab, width = state["tok_emb.weight"].shape
    own_vocab = int(model.tok_emb.weight.shape[0])  # type: ignore[union-attr, index]
    if own_vocab != vocab:
        raise _vocab_error(
            vocab,
            own_vocab,
            "the classifier must encode its texts with the tokenizer the GPT was trained with",
            "data.tokenizer_file=RUN/tokenizer.json (RUN: the pre-training run)",
        )
    n_layer = _blocks(state, "blocks.")
    hidden = int(state["blocks.0.fc.weight"].shape[0])
    _check_shape(
        model,
        blocks=n_layer,
        width=width,
        hidden=hidden,
        hint=f"give the classifier the GPT's architecture: model.n_layer={n_layer} model.d_model={width} "
        "model.n_head=(the GPT's)",
    )
    if "pos_emb.weight" not in state:
        raise ConfigError(
            "the GPT has rotary positions; the classifier learns an embedding per position",
            hint="pre-train the GPT with model.positions=learned",
        )
    pos = state["pos_emb.weight"]
    own = model.state_dict()
    need = int(own["pos_emb.weight"].shape[0]) - 1  # [CLS] + max_length tokens
    if need > pos.shape[0]:
        raise ConfigError(
            f"the GPT has {pos.shape[0]} positions, fewer than the classifier's max_length {need}",
            hint=f"set data.max_length={pos.shape[0]}, or pre-train with data.context_length={need}",
        )
    # Token i of the text sits at the GPT's position i; the [CLS] slot in front gets position 0's embedding.
    mapped: State = {"tok_emb.weight": state["tok_emb.weight"], "pos_emb.weight": torch.cat([pos[:1], pos[:need]])}
    notes = ["pos_emb.weight: [CLS] at GPT position 0, text token i at GPT position i"]
    zeros = []
    for key in own:
        if key.startswith("blocks.") or key.startswith("ln_f."):
            if key in state:
                mapped[key] = state[key]
            elif key.endswith(".bias"):  # a GPT trained with bias=false: zero biases are the same function
                mapped[key] = torch.zeros_like(own[key])
                zeros.append(key)
    if zeros:
        notes.append(f"{len(zeros)} biases set to zero (the GPT has none)")
    notes.append("head.weight: the LM head is not used; [CLS] and the classification head start fresh")
    return mapped, notes
