"""Plan-time checks of the nlp models (``Component(check="engine_nlp.checks:check_model")``), torch-free: at
``--dry-run`` too.

Both concern ``model.init_from`` weights that would load without a shape error and still be wrong: a token
embedding read through another tokenizer, and attention heads cut at other places (the weights do not record
``n_head``; the run's ``config.yaml``, or Hugging Face's ``config.json`` beside a weights file, does).
"""

from __future__ import annotations

import fnmatch
import json
from pathlib import Path
from typing import Any

from engine import ConfigError
from engine.runs import inside

#: The models with attention heads, as a run's ``config.yaml`` names them (the weights' source, read back).
MODELS = ("nlp.gpt", "nlp.transformer_classifier", "nlp.lstm_classifier")
EMBEDDINGS = ("tok_emb.weight", "emb.weight")  # the token embedding of each model
#: ``n_head``'s default in nlp.gpt and nlp.transformer_classifier (a test keeps it equal to the signatures').
DEFAULT_HEADS = 4
#: Hugging Face GPT-2 settings that nlp.gpt computes: the tanh GELU and LayerNorm's default eps.
HF_GELU = ("gelu_new", "gelu_pytorch_tanh")


def _beside(source: str, name: str) -> Path | None:
    """File ``name`` of the run ``source`` (a run directory or one of its checkpoints), or beside a weights file."""
    path = Path(source).expanduser()
    if path.is_dir():
        candidates = [inside(path, name)]  # a run's own file, never through a link leading out of it
    elif path.is_file():
        candidates = [path.parent / name]
        if path.parent.name == "checkpoints":  # RUN/checkpoints/best.ckpt
            candidates.append(inside(path.parent.parent, name))
    else:
        return None
    return next((c for c in candidates if c.is_file()), None)


def weights_tokenizer(source: str) -> Path | None:
    """The ``tokenizer.json`` that goes with the weights ``source``: a run's own, or the file beside a weights file."""
    return _beside(source, "tokenizer.json")


def _same_tokenizer(a: Path, b: Path) -> bool:
    if a.read_bytes() == b.read_bytes():
        return True
    try:
        return bool(json.loads(a.read_text(encoding="utf-8")) == json.loads(b.read_text(encoding="utf-8")))
    except (OSError, ValueError):
        return False


def _skipped(patterns: Any, name: str) -> bool:
    patterns = [patterns] if isinstance(patterns, str) else list(patterns or ())
    return any(fnmatch.fnmatchcase(name, p) or name.startswith(f"{p}.") for p in patterns)


def check_model(values: dict[str, Any], where: str, config: dict[str, Any]) -> None:
    """The nlp models' plan-time check: weights of ``init_from`` read through their tokenizer, with their heads."""
    check_tokenizer_reuse(values, config.get("data") or {}, where)
    check_heads(values, where)


def check_tokenizer_reuse(model: dict[str, Any], data: dict[str, Any], where: str = "model") -> None:
    """A model initialised from weights that come with a tokenizer must read data encoded by that tokenizer.

    The rows of a token embedding are indexed by the tokenizer it was trained with; a data source that trains
    its own tokenizer (even of the same size) gives the ids other meanings, and nothing would fail. So when
    ``model.init_from`` is a run with a ``tokenizer.json`` (or a weights file with one beside it), a data
    source that can read a tokenizer (``tokenizer_file``) must be given that one, unless the embedding is
    left out (``model.init_skip``).
    """
    if "tokenizer_file" not in data or not model.get("init_from"):
        return
    source = str(model["init_from"])
    if any(_skipped(model.get("init_skip"), e) for e in EMBEDDINGS):
        return
    theirs = weights_tokenizer(source)
    if theirs is None:
        return
    given = data.get("tokenizer_file")
    if not given:
        raise ConfigError(
            f"{where}.init_from={source} comes with the tokenizer {theirs}, but the data would train a new one: "
            "its token ids would mean other tokens to the loaded embedding",
            hint=f"reuse it: data.tokenizer_file={theirs}",
        )
    mine = Path(str(given)).expanduser()
    if mine.is_file() and not _same_tokenizer(mine, theirs):
        raise ConfigError(
            f"data.tokenizer_file={given} is not the tokenizer {where}.init_from={source} was trained with ({theirs})",
            hint=f"set data.tokenizer_file={theirs}, or skip the embedding: {where}.init_skip=[tok_emb.*]",
        )


def _source_heads(source: str) -> tuple[int, str] | None:
    """(heads, where it is written) of the weights ``source``: an nlp run's config.yaml, or GPT-2's config.json."""
    import yaml

    run_config = _beside(source, "config.yaml")
    if run_config is not None:
        try:
            theirs = (yaml.safe_load(run_config.read_text(encoding="utf-8")) or {}).get("model") or {}
        except (OSError, yaml.YAMLError, AttributeError):
            return None
        if theirs.get("name") in MODELS[:2] and isinstance(theirs.get("n_head"), int):
            return theirs["n_head"], f"{run_config} (model.n_head)"
        return None
    hf_config = _beside(source, "config.json")
    if hf_config is None or Path(source).is_dir():
        return None
    try:
        hf = json.loads(hf_config.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(hf, dict) or hf.get("model_type") != "gpt2":
        return None
    act, eps = hf.get("activation_function", "gelu_new"), hf.get("layer_norm_epsilon", 1e-5)
    scaling = hf.get("scale_attn_weights", True) and not hf.get("scale_attn_by_inverse_layer_idx", False)
    if act not in HF_GELU or abs(float(eps) - 1e-5) > 1e-12 or not scaling:
        raise ConfigError(
            f"{hf_config}: activation_function {act}, layer_norm_epsilon {eps}, scale_attn_weights "
            f"{hf.get('scale_attn_weights', True)}, scale_attn_by_inverse_layer_idx "
            f"{hf.get('scale_attn_by_inverse_layer_idx', False)}; nlp.gpt computes GPT-2's defaults: "
            f"{HF_GELU[0]} (tanh GELU), eps 1e-05, attention scaled by 1/sqrt(head size) only",
            hint="these weights need another model; nlp.gpt's output would not be theirs",
        )
    return (int(hf["n_head"]), f"{hf_config} (n_head)") if isinstance(hf.get("n_head"), int) else None


def check_heads(model: dict[str, Any], where: str = "model") -> None:
    """``model.n_head`` equal to that of the GPT the weights come from: no shape tells them apart."""
    if "n_head" not in model or not model.get("init_from"):  # a model without attention heads (the LSTM)
        return
    found = _source_heads(str(model["init_from"]))
    ours = model.get("n_head", DEFAULT_HEADS)
    if found is not None and found[0] != ours:
        raise ConfigError(
            f"{where}.n_head is {ours}, the weights of {where}.init_from were trained with {found[0]} heads "
            f"({found[1]}): every tensor would load, but attention would be cut into other heads",
            hint=f"set {where}.n_head={found[0]}",
        )


def check_instructions(values: dict[str, Any], where: str, config: dict[str, Any]) -> dict[str, Any] | None:
    """Plan-time: the data is read through the pre-trained model's tokenizer (filled in when unset): that of a
    run ``model.init_from`` names, or the ``tokenizer.json`` of a Hugging Face directory ``model.path``."""
    if values.get("tokenizer_file"):
        return None
    for section in config.values():
        if not isinstance(section, dict):
            continue
        for key in ("init_from", "path"):
            source = section.get(key)
            if isinstance(source, str) and Path(source).expanduser().is_dir():
                file = inside(Path(source).expanduser(), "tokenizer.json")
                if file.is_file():
                    return {**values, "tokenizer_file": str(file)}
    return None
