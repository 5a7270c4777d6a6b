"""``engine hf export`` (a run as a Hugging Face directory) and ``engine hf convert`` (GGUF -> directory).

An ``nlp.gpt`` run becomes a ``GPT2LMHeadModel``: GPT-2 is a pre-LayerNorm decoder with learned positions,
a 4x tanh-GELU MLP (here: any ratio, ``n_inner``), LayerNorm eps 1e-5 and ``Conv1D`` linear layers (weights
``[in, out]``, so transposed from ``nn.Linear``); an ``nlp.gpt`` without biases gets zero biases (the same
function). Rotary runs have no GPT-2 counterpart and are refused. An ``hf.*`` run is its own module's
``save_pretrained``. The tokenizer goes along: the run's ``tokenizer/`` copy (hf data), else its
``tokenizer.json`` wrapped as a ``PreTrainedTokenizerFast``.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from engine import ConfigError
from engine.runs import inside, open_run

_BLOCK = {  # nlp.gpt block key -> GPT-2 block key, transposed (Conv1D) or not
    "ln1.weight": ("ln_1.weight", False),
    "ln1.bias": ("ln_1.bias", False),
    "attn.qkv.weight": ("attn.c_attn.weight", True),
    "attn.qkv.bias": ("attn.c_attn.bias", False),
    "attn.proj.weight": ("attn.c_proj.weight", True),
    "attn.proj.bias": ("attn.c_proj.bias", False),
    "ln2.weight": ("ln_2.weight", False),
    "ln2.bias": ("ln_2.bias", False),
    "fc.weight": ("mlp.c_fc.weight", True),
    "fc.bias": ("mlp.c_fc.bias", False),
    "out.weight": ("mlp.c_proj.weight", True),
    "out.bias": ("mlp.c_proj.bias", False),
}


def gpt_to_hf(model: Any, n_head: int) -> Any:
    """An ``nlp.gpt`` module as an equivalent ``transformers.GPT2LMHeadModel`` (same logits)."""
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    if model.pos_emb is None:
        raise ConfigError(
            "this run's nlp.gpt has rotary positions; GPT-2 (the export format) has learned ones",
            hint="export a run trained with model.positions=learned",
        )
    vocab, width = model.tok_emb.weight.shape
    tied = model.head.weight is model.tok_emb.weight
    cfg = GPT2Config(
        vocab_size=int(vocab),
        n_positions=int(model.context_length),
        n_embd=int(width),
        n_layer=len(model.blocks),
        n_head=int(n_head),
        n_inner=int(model.blocks[0].fc.weight.shape[0]),
        activation_function="gelu_new",
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
        layer_norm_epsilon=float(model.ln_f.eps),
        tie_word_embeddings=tied,
    )
    hf = GPT2LMHeadModel(cfg)
    target = hf.state_dict()
    state = {"transformer.wte.weight": model.tok_emb.weight, "transformer.wpe.weight": model.pos_emb.weight}
    state |= {"transformer.ln_f.weight": model.ln_f.weight, "lm_head.weight": model.head.weight}
    if model.ln_f.bias is not None:
        state["transformer.ln_f.bias"] = model.ln_f.bias
    for i, block in enumerate(model.blocks):
        for key, value in block.state_dict().items():
            if key in _BLOCK:
                name, transpose = _BLOCK[key]
                state[f"transformer.h.{i}.{name}"] = value.t() if transpose else value
    for key, value in target.items():  # biases nlp.gpt was built without are zeros: the same function
        if key not in state and key.endswith("bias") and not key.endswith(("attn.bias", "masked_bias")):
            state[key] = torch.zeros_like(value)
    missing, unexpected = hf.load_state_dict({k: v.detach().clone() for k, v in state.items()}, strict=False)
    missing = [k for k in missing if not k.endswith(("attn.bias", "attn.masked_bias"))]
    if missing or unexpected:
        raise ConfigError(f"nlp.gpt -> GPT-2: missing {missing[:3]}, unexpected {unexpected[:3]}")
    if tied:
        hf.tie_weights()
    return hf.eval()


def run_tokenizer(run: Any) -> Any:
    """The run's tokenizer as a transformers tokenizer: its ``tokenizer/`` folder, else its ``tokenizer.json``."""
    from engine_hf.data import RUN_TOKENIZER, load_tokenizer

    folder = inside(run.path, RUN_TOKENIZER)
    if (folder / "tokenizer_config.json").is_file():
        return load_tokenizer(str(folder), "the run's tokenizer")
    file = inside(run.path, "tokenizer.json")
    if file.is_file():
        from tokenizers import Tokenizer
        from transformers import PreTrainedTokenizerFast

        raw = Tokenizer.from_file(str(file))
        specials = {t: raw.token_to_id(t) for t in ("<pad>", "<unk>", "<|endoftext|>")}
        return PreTrainedTokenizerFast(
            tokenizer_object=raw,
            pad_token="<pad>" if specials["<pad>"] is not None else "<|endoftext|>",
            unk_token="<unk>" if specials["<unk>"] is not None else None,
            eos_token="<|endoftext|>" if specials["<|endoftext|>"] is not None else None,
        )
    source = ((run.config.get("data") or {}).get("tokenizer")) or ((run.config.get("model") or {}).get("path"))
    if source:
        return load_tokenizer(str(source), "the run's data.tokenizer")
    return None


def export_run(run_dir: str | Path, out_dir: str | Path, which: str = "best") -> Path:
    """Write run ``run_dir`` as a Hugging Face directory ``out_dir``; returns it."""
    run = open_run(run_dir)
    name = str((run.config.get("model") or {}).get("name", ""))
    if name != "nlp.gpt" and not name.startswith("hf."):
        raise ConfigError(f"{run.path}: its model is {name or 'unknown'}; hf export takes nlp.gpt and hf.* runs")
    out = Path(out_dir).expanduser()
    if out.exists() and (not out.is_dir() or any(out.iterdir())):
        raise ConfigError(f"{out} exists and is not an empty directory", hint="choose a new output directory")
    model = run.model(which)
    hf = model.hf if name.startswith("hf.") else gpt_to_hf(model, int(run.config["model"].get("n_head") or 4))
    hf.config.use_cache = True  # the exported model generates with transformers' cache
    out.mkdir(parents=True, exist_ok=True)
    hf.save_pretrained(str(out), safe_serialization=True)
    tok = run_tokenizer(run)
    if tok is not None:
        tok.save_pretrained(str(out))
    return out


def convert(source: str, out_dir: str | Path) -> Path:
    """A GGUF checkpoint (``smollm2`` too), dequantised, as a Hugging Face directory with its tokenizer."""
    import torch
    from transformers import AutoModelForCausalLM

    from engine_hf.data import load_tokenizer
    from engine_hf.paths import locate

    location = locate(source, "source")
    if not location.gguf_file:
        raise ConfigError(f"{source} is already a Hugging Face directory (config.json): nothing to convert")
    out = Path(out_dir).expanduser()
    model = AutoModelForCausalLM.from_pretrained(str(location.directory), dtype=torch.float32, **location.kwargs())
    # transformers marks a model read from GGUF as quantised (not serialisable), though its weights are plain
    # float32 once dequantised: the same weights in a model built from its config (the GGUF marker dropped).
    config = model.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    plain.load_state_dict(model.state_dict())
    out.mkdir(parents=True, exist_ok=True)
    plain.save_pretrained(str(out), safe_serialization=True)
    load_tokenizer(source, "source").save_pretrained(str(out))
    return out


def export_command(args: argparse.Namespace) -> int:
    out = export_run(args.run, args.out_dir, args.checkpoint)
    print(f"wrote {out} (transformers: AutoModelForCausalLM.from_pretrained('{out}'))")
    return 0


def convert_command(args: argparse.Namespace) -> int:
    out = convert(args.source, args.out_dir)
    print(f"wrote {out}: use model=hf.causal_lm model.path={out}")
    return 0
