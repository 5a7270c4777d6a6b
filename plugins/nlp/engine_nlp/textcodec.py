"""`engine.protocols.EncodesText` for the language-modelling sources (``nlp.text_files``, ``nlp.unlabelled_texts``)."""

from __future__ import annotations

from collections.abc import Sequence

from engine import ConfigError


class TextCodec:
    """Text -> the run's token ids and back, through the source's ``tokenizer`` and ``context_length``."""

    tokenizer: object
    context_length: int

    def encode_text(self, text: str) -> list[int]:
        """A prompt's ids; ConfigError (one line) for empty text, unknown characters, more than the context."""
        if not isinstance(text, str) or not text:
            raise ConfigError("the text is empty: give at least one character")
        tok = self.tokenizer
        bad = tok.unknown_chars(text)  # type: ignore[attr-defined]
        if bad:
            shown = ", ".join(repr(c) for c in bad[:5])
            raise ConfigError(f"the text has {len(bad)} character(s) this run's character vocabulary lacks: {shown}")
        ids = list(tok.encode(text))  # type: ignore[attr-defined]
        if not ids:
            raise ConfigError("the text encodes to no tokens")
        if len(ids) > self.context_length:
            raise ConfigError(f"the text is {len(ids)} tokens long, more than the context length {self.context_length}")
        return ids

    def decode_tokens(self, ids: Sequence[int]) -> str:
        """The text of ``ids``, special tokens (``<pad>``, ``<unk>``, end of text) dropped."""
        return str(self.tokenizer.decode([int(i) for i in ids]))  # type: ignore[attr-defined]
