"""Text in, text out for runs whose task generates (`engine.protocols.Generates`) from a data source encoding text
(`engine.protocols.EncodesText`): what ``engine predict``, ``engine serve`` and ``engine generate`` share.

The network is the run's eager model or a deployed artifact (any callable called like the model); the decoding
loop is the task's ``generate``, in Python. Every input a user gives is checked here and refused with one line
(`InputError`: exit 2 on the command line, 422 from the server): text that is not a string, empty, longer than the
server's limit, characters or lengths the source's ``encode_text`` refuses, files that are not UTF-8, decoding
options the task's ``generate`` does not take or of the wrong type.
"""

from __future__ import annotations

import inspect
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from engine import ConfigError, EngineError
from engine.protocols import DeclaresIO, EncodesText, Generates, implements
from engine_deploy.inputs import InputError
from engine_deploy.protocols import StreamsTokens

# nn.TransformerEncoder's eval fast path on padded batches warns on every call that nested tensors are a
# prototype: torch's note to itself, not the user's business (one filter for this message, process-wide).
warnings.filterwarnings("ignore", message="The PyTorch API of nested tensors is in prototype", category=UserWarning)

#: Longest text accepted by default (characters; the server's ``--max-text-chars``).
MAX_TEXT_CHARS = 4096


def generates(task_class: Any) -> bool:
    """Whether a run's task (its class) takes the text path: it generates and does not declare tensor inputs."""
    if not implements(task_class, Generates):
        return False
    return not implements(task_class, DeclaresIO) or task_class.input_kind != "tensor"


def text_source(datamodule: Any) -> Any:
    """The run's data source (or datamodule) when it encodes text, else None."""
    for obj in (getattr(datamodule, "source", None), datamodule):
        if obj is not None and implements(obj, EncodesText):
            return obj
    return None


def option_names(task: Any) -> tuple[dict[str, Any], bool]:
    """The decoding options the task's ``generate`` names, with their defaults (``inspect.Parameter.empty``: none),
    and whether it takes others too (``**options``: the task checks them itself, ConfigError for one it lacks)."""
    params = list(inspect.signature(task.generate).parameters.values())[2:]  # after network, inputs
    named = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return {p.name: p.default for p in params if p.kind in named}, any(p.kind == p.VAR_KEYWORD for p in params)


class TextPath:
    """A generating run's text path: ``network`` (model or artifact), the built ``task``, the text ``source``."""

    def __init__(self, task: Any, source: Any, network: Any, max_text_chars: int = MAX_TEXT_CHARS) -> None:
        if source is None:
            raise EngineError(
                f"the run's task ({type(task).__name__}) generates, but its data source cannot encode text",
                hint="the data source implements engine.protocols.EncodesText (encode_text, decode_tokens)",
            )
        self.task, self.source, self.network, self.max_text_chars = task, source, network, max_text_chars
        self.kinds = (task.input_kind, task.output_kind) if implements(task, DeclaresIO) else ("text", "text")
        self.streams = implements(task, StreamsTokens)
        self.defaults, self.open = option_names(task)

    def options(self, values: dict[str, Any], where: str = "options") -> dict[str, Any]:
        """``values`` checked against the task's ``generate`` (names with did-you-mean, types); InputError if not.

        ``stop`` as text (a string or a list of strings) is this path's, whatever the task takes: `generate` and
        `stream` cut the decoded output at the first stop text; the task never sees the strings."""
        import engine

        values = dict(values)
        stops = text_stops(values.get("stop"), where)
        if stops is not None:
            del values["stop"]
        unknown = [k for k in values if k not in self.defaults]
        if unknown and not self.open:
            took = ", ".join(self.defaults) or "none"
            raise InputError(f"{where}: this run's task does not take {unknown[0]!r} (its decoding options: {took})")
        try:
            checked = dict(engine.check_arguments(self.task.generate, dict(values), where, skip=2))
        except ConfigError as exc:
            raise InputError(exc.message) from None
        return {**checked, "stop": stops} if stops else checked

    def encode(self, texts: Any, where: str = "inputs") -> list[list[int]]:
        """Texts (a string or a list of strings) -> token ids per text; InputError naming the text that fails."""
        if isinstance(texts, str):
            texts = [texts]
        if not isinstance(texts, list) or not texts:
            raise InputError(f'{where}: expected a list of texts, e.g. {{"inputs": ["some text"]}}')
        ids = []
        for i, text in enumerate(texts):
            at = f"{where}[{i}]" if len(texts) > 1 else where
            if not isinstance(text, str):
                raise InputError(f"{at}: this model takes text; got {type(text).__name__} ({str(text)[:40]})")
            if len(text) > self.max_text_chars:
                raise InputError(f"{at}: {len(text)} characters; at most {self.max_text_chars}")
            if not text.strip():
                raise InputError(f"{at}: empty text")
            try:
                ids.append(list(self.source.encode_text(text)))
            except ConfigError as exc:
                raise InputError(f"{at}: {exc.message}") from None
        return ids

    def generate(self, ids: list[list[int]], **options: Any) -> list[dict[str, Any]]:
        """One record per input: the generated text and its number of tokens (ConfigError: an option refused)."""
        stops, options = _split_stop(options)
        out = self.task.generate(self.network, [list(i) for i in ids], **options)
        records = []
        for o in out:
            text = self.source.decode_tokens(o)
            cut = first_stop(text, stops)
            if cut >= 0:  # the tokens of the text kept (a token holding the stop's first character is cut too)
                text, o = text[:cut], _tokens_of(o, cut, self.source)
            records.append({"text": text, "tokens": len(o)})
        return records

    def stream(self, ids: list[int], **options: Any) -> Iterator[str]:
        """The text of one input as it is generated: the new text after each token (needs `StreamsTokens`)."""
        stops, options = _split_stop(options)
        hold = max((len(s) for s in stops), default=1) - 1  # text that may begin a stop is held back
        done: list[int] = []
        shown = ""
        tokens = self.task.generate_stream(self.network, list(ids), **options)
        try:
            for token in tokens:
                done.append(int(token))
                text = self.source.decode_tokens(done)
                cut = first_stop(text, stops)
                if cut >= 0:  # generation ends here: the task's generator is closed below
                    if cut > len(shown) and text.startswith(shown):
                        yield text[len(shown) : cut]
                    return
                ready = text[: max(len(shown), len(text) - hold)]
                if ready.startswith(shown) and len(ready) > len(shown):
                    yield ready[len(shown) :]
                    shown = ready
        finally:
            close = getattr(tokens, "close", None)
            if close is not None:
                close()
        text = self.source.decode_tokens(done)
        if text != shown and text.startswith(shown):
            yield text[len(shown) :]

    def metadata(self) -> dict[str, Any]:
        """What ``/metadata`` says about text runs: kinds, vocabulary sizes, decoding options and their defaults."""
        plain = (bool, int, float, str, type(None))
        return {
            "input": {"kind": self.kinds[0], "max_text_chars": self.max_text_chars},
            "output": {"kind": self.kinds[1], "streams": self.streams},
            "generate_takes_other_options": self.open,
            "generate_options": {
                k: (v if isinstance(v, plain) else repr(v))
                for k, v in self.defaults.items()
                if v is not inspect.Parameter.empty
            },
        }


def text_stops(value: Any, where: str) -> tuple[str, ...] | None:
    """A ``stop`` given as text (a string or a list of non-empty strings) -> the strings; None for no ``stop`` or
    one that is not text (token ids: the task's own); InputError for an empty string."""
    if value is None:
        return None
    items = [value] if isinstance(value, str) else value
    if not isinstance(items, (list, tuple)) or not any(isinstance(s, str) for s in items):
        return None
    if not all(isinstance(s, str) and s for s in items):
        raise InputError(f"{where}: stop must be a non-empty text or a list of non-empty texts, got {value!r}")
    return tuple(items)


def first_stop(text: str, stops: tuple[str, ...]) -> int:
    """Where the first stop text begins in ``text`` (-1: none)."""
    return min((i for i in (text.find(s) for s in stops) if i >= 0), default=-1)


def _split_stop(options: dict[str, Any]) -> tuple[tuple[str, ...], dict[str, Any]]:
    """Stop texts (this path's) apart from the options the task gets (a ``stop`` of token ids stays the task's)."""
    stops = text_stops(options.get("stop"), "stop") or ()
    return stops, ({k: v for k, v in options.items() if k != "stop"} if stops else dict(options))


def _tokens_of(ids: list[int], chars: int, source: Any) -> list[int]:
    """The shortest prefix of ``ids`` whose text covers ``chars`` characters."""
    for n in range(len(ids) + 1):
        if len(source.decode_tokens(ids[:n])) >= chars:
            return ids[:n]
    return ids


def read_texts(path: str | Path) -> list[str]:
    """A text file's inputs, one per non-blank line; InputError for a file that is not UTF-8 or holds no text."""
    file = Path(path).expanduser()
    try:
        data = file.read_bytes()
    except OSError as exc:
        raise InputError(f"cannot read {file}: {exc.strerror or exc}") from None
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise InputError(f"{file}: not a UTF-8 text file ({exc.reason} at byte {exc.start})") from None
    lines = [line.rstrip("\r") for line in text.split("\n")]
    kept = [line for line in lines if line.strip()]
    if not kept:
        raise InputError(f"{file}: no text (one input per line)")
    return kept


def vocabulary(facts: dict[str, Any]) -> dict[str, int]:
    """The vocabulary sizes a run's facts name (``vocab_size``, ``src_vocab_size``, ``tgt_vocab_size`` …)."""
    return {k: v for k, v in sorted(facts.items()) if "vocab_size" in k and type(v) is int}
