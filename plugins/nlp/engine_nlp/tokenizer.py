"""Tokenizers built with the ``tokenizers`` library: byte-level BPE and character-level.

Both are saved as a standard ``tokenizer.json`` that ``tokenizers.Tokenizer.from_file`` reads back:

- ``bpe``: byte-level BPE (GPT-2 style) trained on the run's training text; every string encodes,
  since any byte is in the base alphabet;
- ``char``: one token per Unicode character of the training text (a ``WordLevel`` model over single
  characters, a one-character ``Split`` pre-tokenizer and a ``Fuse`` decoder); characters never seen in
  training map to ``<unk>`` in data and are refused in prompts.

Token 0 of a tokenizer trained here is always ``<pad>``. A tokenizer read from a file may be another library's:
GPT-2's ``tokenizer.json`` (Hugging Face) has no ``<pad>`` and pads with ``<|endoftext|>``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Literal

from engine import ConfigError, EngineError

PAD, UNK, EOT = "<pad>", "<unk>", "<|endoftext|>"
Kind = Literal["char", "bpe"]


class TextTokenizer:
    """A trained ``tokenizers.Tokenizer`` with the few operations the plugin needs."""

    def __init__(self, tokenizer: object, kind: Kind) -> None:
        self.tokenizer = tokenizer
        self.kind: Kind = kind
        self._vocab: dict[str, int] = tokenizer.get_vocab()  # type: ignore[attr-defined]

    # ------------------------------------------------------------------ building
    @classmethod
    def train(cls, kind: Kind, texts: Sequence[str], vocab_size: int = 1024) -> TextTokenizer:
        """Train a tokenizer of ``kind`` on ``texts`` (the training split only)."""
        from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, trainers

        if not any(texts):
            raise ConfigError("cannot train a tokenizer on empty text", hint="check the data: the corpus is empty")
        if kind == "char":
            chars = sorted(set().union(*(set(t) for t in texts)))
            vocab = {PAD: 0, UNK: 1, **{c: i + 2 for i, c in enumerate(chars)}}
            tok = Tokenizer(models.WordLevel(vocab, unk_token=UNK))
            tok.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
            tok.decoder = decoders.Fuse()
            return cls(tok, "char")
        if kind == "bpe":
            if vocab_size < 260:
                raise ConfigError(
                    f"BPE vocab_size must be at least 260 (256 bytes + <pad> + merges), got {vocab_size}",
                    hint="set data.vocab_size to e.g. 1024",
                )
            tok = Tokenizer(models.BPE())
            tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
            tok.decoder = decoders.ByteLevel()
            trainer = trainers.BpeTrainer(
                vocab_size=vocab_size,
                special_tokens=[PAD],
                initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
                show_progress=False,
            )
            tok.train_from_iterator(list(texts), trainer=trainer)
            return cls(tok, "bpe")
        raise ConfigError(f"unknown tokenizer '{kind}'", hint="choose char or bpe")

    @classmethod
    def load(cls, path: str | Path) -> TextTokenizer:
        """Read a ``tokenizer.json`` written by `save` (or any WordLevel/BPE tokenizer file)."""
        from tokenizers import Tokenizer

        file = Path(path).expanduser()
        if not file.is_file():
            raise EngineError(f"tokenizer file not found: {file}", hint="a run of the nlp plugin writes tokenizer.json")
        try:
            tok = Tokenizer.from_file(str(file))
        except Exception as exc:
            raise EngineError(f"{file} is not a tokenizers tokenizer.json: {exc}") from None
        kind: Kind = "char" if type(tok.model).__name__ == "WordLevel" else "bpe"
        if tok.token_to_id(PAD) is None and tok.token_to_id(EOT) is None:
            raise EngineError(
                f"{file} has no padding token: neither {PAD} nor GPT-2's {EOT}",
                hint="use a tokenizer.json written by an nlp run, or one with one of these tokens",
            )
        return cls(tok, kind)

    def save(self, path: str | Path) -> Path:
        """Write ``tokenizer.json`` whole or not at all (a full disk keeps the previous one)."""
        from engine.runs import write_text_atomic

        path = Path(path)
        write_text_atomic(path, self.tokenizer.to_str(pretty=True))  # type: ignore[attr-defined]
        return path

    # ------------------------------------------------------------------ use
    @property
    def vocab_size(self) -> int:
        return int(self.tokenizer.get_vocab_size())  # type: ignore[attr-defined]

    @property
    def pad_id(self) -> int:
        """``<pad>``'s id; GPT-2's tokenizer, which has none, pads with ``<|endoftext|>``."""
        return self._vocab[PAD] if PAD in self._vocab else self._vocab[EOT]

    def unknown_chars(self, text: str) -> list[str]:
        """Characters of ``text`` the tokenizer cannot represent (always none for byte-level BPE)."""
        if self.kind != "char":
            return []
        return sorted({c for c in text if c not in self._vocab})

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text`` (unknown characters become ``<unk>`` for the char tokenizer)."""
        if self.kind == "char":  # a dictionary lookup is ~50x faster than the generic pipeline, same ids
            unk = self._vocab[UNK]
            get = self._vocab.get
            return [get(c, unk) for c in text]
        return list(self.tokenizer.encode(text).ids)  # type: ignore[attr-defined]

    def encode_batch(self, texts: Iterable[str]) -> list[list[int]]:
        texts = list(texts)
        if self.kind == "char":
            return [self.encode(t) for t in texts]
        return [list(e.ids) for e in self.tokenizer.encode_batch(texts)]  # type: ignore[attr-defined]

    def encode_prompt(self, text: str) -> list[int]:
        """Like `encode`, but a character the tokenizer cannot encode is a clear error."""
        bad = self.unknown_chars(text)
        if bad:
            shown = ", ".join(repr(c) for c in bad[:10])
            raise EngineError(
                f"the prompt has {len(bad)} character(s) this run's character tokenizer has never seen: {shown}",
                hint="use only characters of the training text (or train with data.tokenizer=bpe, which encodes "
                "any text)",
            )
        return self.encode(text)

    def decode(self, ids: Sequence[int]) -> str:
        return str(self.tokenizer.decode(list(ids), skip_special_tokens=True))  # type: ignore[attr-defined]
