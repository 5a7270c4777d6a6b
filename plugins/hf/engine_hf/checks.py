"""Plan-time checks (torch-free, at ``--dry-run`` too): a model is on local disk, data has its tokenizer."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from engine import ConfigError
from engine_hf.paths import locate


def check_model(values: dict[str, Any], where: str, config: dict[str, Any]) -> dict[str, Any]:
    """Exactly one of ``path``/``config``/``config_path``; ``path`` a local model (a hub id: how to download it)."""
    given = [k for k in ("path", "config", "config_path") if values.get(k) is not None]
    if len(given) != 1:
        raise ConfigError(
            f"{where}: set exactly one of {where}.path (a local model directory, a .gguf file or smollm2), "
            f"{where}.config (a dict with model_type) or {where}.config_path"
            + (f"; got {' and '.join(given)}" if given else ""),
        )
    if values.get("path") is not None:
        locate(str(values["path"]), f"{where}.path")
    elif values.get("config_path") is not None and not Path(str(values["config_path"])).expanduser().exists():
        raise ConfigError(f"{where}.config_path: {values['config_path']} does not exist")
    return values


def check_data(values: dict[str, Any], where: str, config: dict[str, Any]) -> dict[str, Any]:
    """``data.tokenizer`` defaults to the model's directory (``model.path``, else ``model.config_path``)."""
    key = f"{where}.tokenizer"
    if values.get("tokenizer") is None:
        model = config.get("model") or {}
        hf = str(model.get("name", "")).startswith("hf.")
        key = next((f"model.{k}" for k in ("path", "config_path") if hf and model.get(k) is not None), "")
        if not key:
            raise ConfigError(
                f"set {where}.tokenizer: the local model directory (or .gguf file) whose tokenizer encodes the text",
                hint="with model=hf.causal_lm model.path=DIR it defaults to DIR",
            )
        values = {**values, "tokenizer": str(model[key.split(".", 1)[1]])}
    locate(str(values["tokenizer"]), key)  # a mistake is named by the key the user set
    return values
