"""``POST /predict`` on plain bytes and headers: every check a public endpoint needs, then the batcher.

Each refusal is a 4xx with a one-line ``detail`` (never a 500 for what a client sent):

- 401: missing or wrong API key, or the key sent twice (``X-API-Key`` given twice, or with
  ``Authorization`` too): which one counts would be a guess;
- 415: a body that is not declared ``application/json``;
- 400: malformed JSON (including ``NaN``/``Infinity``, which JSON does not have);
- 422: JSON nested deeper than ``max_depth``, not ``{"inputs": …}``, booleans or strings where
  numbers belong, the wrong shape, more than ``max_samples`` samples, ``preprocessed`` not a boolean;
- 503 with ``Retry-After``: the queue of samples waiting for the model is full.
"""

from __future__ import annotations

import hmac
import json
import logging
from dataclasses import dataclass
from typing import Any

from engine import ConfigError
from engine_deploy.batching import Batcher, Overloaded
from engine_deploy.guard import Limits
from engine_deploy.inputs import InputError
from engine_deploy.predictor import Predictor

log = logging.getLogger("uvicorn.error")


class Refused(Exception):
    """A request the endpoint answers with ``status`` and ``detail`` (and extra ``headers``)."""

    def __init__(self, status: int, detail: str, headers: tuple[tuple[bytes, bytes], ...] = ()) -> None:
        super().__init__(detail)
        self.status, self.detail, self.headers = status, detail, headers


def to_json(payload: Any) -> bytes:
    return json.dumps(payload, ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode()


def _no_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number (send finite numbers)")


def _depth(value: Any) -> int:
    """How deep lists nest along the first elements (a rectangular array's dimensions; O(depth)).

    Ragged or deeper nesting elsewhere is refused by the shape check; JSON too deep to parse at
    all raises RecursionError in the parser, answered like this.
    """
    depth = 0
    while isinstance(value, list) and value:
        value, depth = value[0], depth + 1
    return depth


def _has_bool(value: Any) -> bool:
    stack = [value]
    while stack:
        node = stack.pop()
        if isinstance(node, bool):
            return True
        if isinstance(node, list):
            stack.extend(node)
    return False


class Headers:
    """Request headers (lower-case names), remembering which names came more than once."""

    def __init__(self, raw: list[tuple[bytes, bytes]]) -> None:
        self.values: dict[str, str] = {}
        self.repeated: set[str] = set()
        for name, value in raw:
            key = name.decode("latin-1").lower()
            if key in self.values:
                self.repeated.add(key)
            self.values[key] = value.decode("latin-1")

    def get(self, name: str, default: str | None = None) -> str | None:
        return self.values.get(name, default)


@dataclass
class PredictEndpoint:
    """``POST /predict`` and the API key check (used by ``GET /metadata`` too)."""

    predictor: Predictor
    batcher: Batcher
    limits: Limits
    api_key: str | None = None

    def check_key(self, headers: Headers | Any) -> None:
        """Raise `Refused` (401) unless the request carries the API key once (when one is set)."""
        if not self.api_key:
            return
        repeated = headers.repeated if isinstance(headers, Headers) else set()
        given = headers.get("x-api-key")
        auth = headers.get("authorization") or ""
        bearer = auth[7:].strip() if auth.lower().startswith("bearer ") else None
        if {"x-api-key", "authorization"} & repeated or (given is not None and bearer is not None):
            raise Refused(401, "the API key was sent more than once: send it once, in X-API-Key or Authorization")
        given = given if given is not None else bearer
        if not given:
            raise Refused(401, "missing API key: send it in the X-API-Key header (or Authorization: Bearer)")
        if not hmac.compare_digest(given.encode(), self.api_key.encode()):
            raise Refused(401, "wrong API key")

    def payload(self, body: bytes, headers: Headers) -> Any:
        """The request's JSON after the API key and media type checks, or `Refused` (also for other routes)."""
        self.check_key(headers)
        media = (headers.get("content-type") or "").split(";")[0].strip().lower()
        if media != "application/json" or "content-type" in headers.repeated:
            raise Refused(415, f"send the body as application/json (Content-Type: {media or 'missing'})")
        try:
            return json.loads(body, parse_constant=_no_constant)
        except RecursionError:
            raise Refused(422, f"the JSON is nested deeper than {self.limits.max_depth} levels") from None
        except (ValueError, UnicodeDecodeError) as exc:
            raise Refused(400, f"malformed JSON: {exc}") from None

    def parse_text(self, payload: Any) -> tuple[Any, tuple[tuple[str, Any], ...]]:
        """A text run's request ``{"inputs": ["text", ...], "max_new_tokens": 20, ...}``: the inputs' token ids
        (an object array for the batcher) and the decoding options (checked against the task's ``generate``)."""
        text = self.predictor.text
        assert text is not None
        if not isinstance(payload, dict) or "inputs" not in payload:
            raise Refused(422, 'expected a JSON object {"inputs": ["text", ...], "max_new_tokens": 32}')
        inputs = payload["inputs"]
        count = len(inputs) if isinstance(inputs, list) else 1
        if count > self.limits.max_samples:
            raise Refused(422, f"{count} texts in one request; at most {self.limits.max_samples}")
        options = {k: v for k, v in payload.items() if k != "inputs"}
        try:
            ids = text.encode(inputs, "inputs")
            options = text.options(options, "request")
        except InputError as exc:
            raise Refused(422, exc.message) from None
        return self.predictor.text_batch(ids), tuple(sorted(self.bounded(options, payload).items()))

    def bounded(self, options: dict[str, Any], asked: Any) -> dict[str, Any]:
        """``max_new_tokens`` within the server's limit: refused above it when the request asks (`Refused`), the
        task's default capped to it when the request does not."""
        limit, text = self.limits.max_new_tokens, self.predictor.text
        if "max_new_tokens" not in options:  # a task naming no such option, or taking **options (then: the limit)
            return {**options, "max_new_tokens": limit} if text is not None and text.open else options
        value = options["max_new_tokens"]
        if "max_new_tokens" not in asked:
            return {**options, "max_new_tokens": limit if not isinstance(value, int) else min(value, limit)}
        if not isinstance(value, int) or isinstance(value, bool) or value < 1:
            raise Refused(422, f"max_new_tokens must be a positive integer, got {value!r}")
        if value > limit:
            raise Refused(422, f"max_new_tokens {value} is over this server's limit of {limit}")
        return options

    def parse(self, body: bytes, headers: Headers) -> tuple[Any, int, str | None]:
        """The request's inputs (a model-form numpy batch), ``top_k`` and a warning about them, or `Refused`.

        Inputs are raw unless ``"preprocessed": true`` (the rule of `engine_deploy.inputs.prepare`).
        """
        payload = self.payload(body, headers)
        if not isinstance(payload, dict) or "inputs" not in payload:
            raise Refused(422, 'expected a JSON object {"inputs": [...], "top_k": 3}')
        if _depth(payload["inputs"]) > self.limits.max_depth:
            raise Refused(422, f"the inputs nest deeper than {self.limits.max_depth} levels")
        top_k = payload.get("top_k", 3)
        if not isinstance(top_k, int) or isinstance(top_k, bool) or top_k < 1:
            raise Refused(422, f"top_k must be a positive integer, got {top_k!r}")
        if (b"true" in body or b"false" in body) and _has_bool(payload["inputs"]):
            raise Refused(422, "inputs must be numbers; booleans are not accepted")
        preprocessed = payload.get("preprocessed", False)
        if not isinstance(preprocessed, bool):
            raise Refused(422, f"preprocessed must be true or false, got {preprocessed!r}")
        try:
            x, warning = self.predictor.inputs(payload["inputs"], preprocessed=preprocessed)
        except InputError as exc:
            raise Refused(422, exc.message) from None
        if len(x) > self.limits.max_samples:
            raise Refused(422, f"{len(x)} samples in one request; at most {self.limits.max_samples}")
        return x, top_k, warning

    async def __call__(self, body: bytes, headers: Headers) -> tuple[int, bytes, tuple[tuple[bytes, bytes], ...]]:
        """The status, JSON body and extra headers answering a request."""
        try:
            if self.predictor.text is not None:  # a generating run: text in, text out
                x, key = self.parse_text(self.payload(body, headers))
                try:
                    outputs = await self.batcher.submit(x, 1, key)
                except Overloaded as exc:
                    raise Refused(503, f"overloaded: {exc}; retry shortly", ((b"retry-after", b"1"),)) from None
                except ConfigError as exc:  # the task's generate refusing a setting (out of its range)
                    raise Refused(422, exc.message) from None
                return 200, to_json({"outputs": outputs}), ()
            x, top_k, warning = self.parse(body, headers)
            try:
                predictions = await self.batcher.submit(x, top_k)
            except Overloaded as exc:
                raise Refused(503, f"overloaded: {exc}; retry shortly", ((b"retry-after", b"1"),)) from None
            answer: dict[str, Any] = {"predictions": predictions}
            if warning:
                answer["warnings"] = [warning]
            return 200, to_json(answer), ()
        except Refused as exc:
            return exc.status, to_json({"detail": exc.detail}), exc.headers
        except Exception as exc:  # the model failed: say so, keep serving
            log.exception("POST /predict failed")
            return 500, to_json({"detail": f"prediction failed: {type(exc).__name__}: {exc}"}), ()
