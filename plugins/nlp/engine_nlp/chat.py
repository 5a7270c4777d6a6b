"""Instruction and chat examples: reading them, formatting them with a chat template, a generated set.

An example is a list of messages (``{"role", "content"}``). Files hold one of three shapes (JSONL, or a
JSON list): ``{"prompt", "response"}``, Alpaca's ``{"instruction", "input", "output"}``, or
``{"messages": [{"role": "user", "content": ...}, {"role": "assistant", "content": ...}, ...]}``.

Formatting uses the tokenizer's chat template (a Jinja template, as Hugging Face tokenizers carry in
``tokenizer_config.json``) when it has one, else `DEFAULT_TEMPLATE`::

    <|system|>
    You are terse.<|end|>
    <|user|>
    Add 12 and 30.<|end|>
    <|assistant|>
    42<|end|>

`segments` cuts the formatted text into parts, each marked trained (the assistant's replies, with the
end marker that lets generation stop) or not (everything else): the loss is computed on the replies only.
"""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from pathlib import Path
from typing import Any

from engine import ConfigError

#: The template used when the tokenizer has none: role tags, and ``<|end|>`` closing every message.
DEFAULT_TEMPLATE = (
    "{% for m in messages %}<|{{ m['role'] }}|>\n{{ m['content'] }}<|end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|assistant|>\n{% endif %}"
)
#: What ends a reply with `DEFAULT_TEMPLATE` (generation stops there).
DEFAULT_END = "<|end|>"
ROLES = ("system", "user", "assistant")

Renderer = Callable[[list[dict[str, str]], bool], str]


def to_messages(record: Any, where: str) -> list[dict[str, str]]:
    """One example as messages; a ConfigError naming ``where`` for a record of no known shape."""
    if isinstance(record, dict) and isinstance(record.get("messages"), list):
        messages = record["messages"]
        for m in messages:
            if not (isinstance(m, dict) and m.get("role") in ROLES and isinstance(m.get("content"), str)):
                raise ConfigError(
                    f"{where}: a message must be {{role: system|user|assistant, content: text}}, got {m!r}"[:300]
                )
        if not messages or messages[-1]["role"] != "assistant":
            raise ConfigError(f"{where}: the last message must be the assistant's reply (what is learned)")
        return [{"role": m["role"], "content": m["content"]} for m in messages]
    if isinstance(record, dict) and "prompt" in record and "response" in record:
        return [
            {"role": "user", "content": str(record["prompt"])},
            {"role": "assistant", "content": str(record["response"])},
        ]
    if isinstance(record, dict) and "instruction" in record and "output" in record:
        extra = str(record.get("input") or "").strip()
        prompt = str(record["instruction"]) + (f"\n\n{extra}" if extra else "")
        return [{"role": "user", "content": prompt}, {"role": "assistant", "content": str(record["output"])}]
    keys = sorted(record) if isinstance(record, dict) else type(record).__name__
    raise ConfigError(
        f"{where}: an example needs prompt/response, instruction/input/output or messages; it has {keys}",
        hint="one JSON object per line (JSONL) or a JSON list of them",
    )


def read_examples(path: str) -> list[list[dict[str, str]]]:
    """The examples of a JSONL file or a JSON list, as messages."""
    file = Path(path).expanduser()
    if not file.is_file():
        raise ConfigError(f"instruction file not found: {file}", hint="data.path names a .jsonl or .json file")
    try:
        text = file.read_text(encoding="utf-8")
    except UnicodeDecodeError:
        raise ConfigError(f"{file} is not UTF-8 text") from None
    stripped = text.lstrip()
    try:
        if stripped.startswith("["):
            records = json.loads(text)
        else:
            records = [json.loads(line) for line in text.splitlines() if line.strip()]
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{file} is neither JSONL nor a JSON list: {exc}") from None
    if not records:
        raise ConfigError(f"{file} holds no example")
    return [to_messages(r, f"{file} example {i + 1}") for i, r in enumerate(records)]


def renderer(template: str | None, special: dict[str, str] | None = None) -> Renderer:
    """``render(messages, add_generation_prompt) -> text`` of a Jinja chat template (`DEFAULT_TEMPLATE` if None)."""
    from jinja2 import TemplateError
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)

    def raise_exception(message: str) -> None:
        raise TemplateError(message)

    env.globals["raise_exception"] = raise_exception
    try:
        compiled = env.from_string(template or DEFAULT_TEMPLATE)
    except TemplateError as exc:
        raise ConfigError(f"the chat template does not parse: {exc}") from None
    extra = dict(special or {})

    def render(messages: list[dict[str, str]], add_generation_prompt: bool) -> str:
        try:
            return compiled.render(messages=messages, add_generation_prompt=add_generation_prompt, **extra)
        except TemplateError as exc:
            raise ConfigError(f"the chat template refused an example: {exc}") from None

    return render


def segments(messages: list[dict[str, str]], render: Renderer) -> list[tuple[str, bool]]:
    """The formatted example as ``(text, trained)`` parts: the assistant's replies trained, the rest not."""
    out: list[tuple[str, bool]] = []
    done = ""
    for i, message in enumerate(messages):
        if message["role"] != "assistant":
            continue
        prompt, upto = render(messages[:i], True), render(messages[: i + 1], False)
        if not (prompt.startswith(done) and upto.startswith(prompt)):
            raise ConfigError(
                "the chat template does not format a conversation as its prefix plus the reply",
                hint="response-only loss masks need a template whose generation prompt is followed by the reply",
            )
        out += [(prompt[len(done) :], False), (upto[len(prompt) :], True)]
        done = upto
    full = render(messages, False)
    if len(full) > len(done):
        out.append((full[len(done) :], False))
    return [(t, trained) for t, trained in out if t]


# --------------------------------------------------------------------------- a generated instruction set

_WORDS = (
    "apple river stone cloud tiger lemon piano garden rocket candle window planet silver forest orange "
    "bridge dragon pepper castle summer winter marble falcon rabbit violet button copper meadow"
).split()


def generated_examples(n: int, seed: int = 0, kinds: tuple[str, ...] | None = None) -> list[list[dict[str, str]]]:
    """``n`` instructions with checkable answers: additions, subtractions, reversed/upper-cased words, lengths."""
    rng = random.Random(seed)
    makers: dict[str, Callable[[], tuple[str, str]]] = {
        "add": lambda: _arith(rng, "+"),
        "subtract": lambda: _arith(rng, "-"),
        "reverse": lambda: (lambda w: (f"Reverse the word {w}.", w[::-1]))(rng.choice(_WORDS)),
        "upper": lambda: (lambda w: (f"Write {w} in capitals.", w.upper()))(rng.choice(_WORDS)),
        "length": lambda: (lambda w: (f"How many letters are in {w}?", str(len(w))))(rng.choice(_WORDS)),
        "first": lambda: (lambda w: (f"What is the first letter of {w}?", w[0]))(rng.choice(_WORDS)),
    }
    chosen = [makers[k] for k in (kinds or tuple(makers))]
    out = []
    for _ in range(n):
        prompt, answer = rng.choice(chosen)()
        out.append([{"role": "user", "content": prompt}, {"role": "assistant", "content": answer}])
    return out


def _arith(rng: random.Random, op: str) -> tuple[str, str]:
    a, b = rng.randint(0, 99), rng.randint(0, 99)
    if op == "+":
        return f"Add {a} and {b}.", str(a + b)
    a, b = max(a, b), min(a, b)
    return f"Subtract {b} from {a}.", str(a - b)
