"""OpenAI-compatible routes of ``engine serve`` for runs whose task generates text.

Mounted (`mount_openai`) when the run's task implements `engine.protocols.Generates` (and `StreamsTokens` or
`DecodesInSteps`) and its data source `engine.protocols.EncodesText`; no model or task is named here.

- ``GET /v1/models``: the run, as the one model (its id is the run directory's name).
- ``POST /v1/completions``: ``prompt`` (a string), ``max_tokens`` (default 16), ``temperature`` (1), ``top_p``
  (1), ``top_k`` (extension; 0 = all), ``stop`` (a string or a list of up to 4), ``seed``, ``stream``.
- ``POST /v1/chat/completions``: ``messages`` (role, content) rendered by the data source's chat template
  (`FormatsChat`: ``format_chat(messages) -> str``) or, without one, `DEFAULT_CHAT_TEMPLATE`; generation stops
  at the next ``"\\nUser:"`` as well.
- ``stream: true``: server-sent events (``data: {chunk}`` lines, then ``data: [DONE]``).

The API key of ``engine serve`` is required as ``Authorization: Bearer KEY`` (or ``X-API-Key``). Refusals are
4xx with OpenAI's error body (``{"error": {"message", "type", "code"}}``): a prompt the tokenizer cannot encode
or longer than the context, ``max_tokens`` <= 0 or over the limit, ``n`` != 1 (400); an unknown model (404);
more than ``max_streams`` generations at once (429). Stop strings are matched on the decoded text.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Protocol, runtime_checkable

from fastapi import FastAPI, Request
from fastapi.responses import Response, StreamingResponse

from engine import ConfigError, EngineError
from engine.protocols import EncodesText, Generates, implements
from engine_deploy.lm_service import DecodesInSteps, GenerationMetrics, Generator, Job
from engine_deploy.protocols import StreamsTokens

#: The chat template of a data source without one: a transcript the model continues after ``Assistant:``.
DEFAULT_CHAT_TEMPLATE = "{System: system\\n}{User: user\\n}{Assistant: assistant\\n}...Assistant:"
_ROLES = {"system": "System", "user": "User", "assistant": "Assistant"}


@runtime_checkable
class FormatsChat(Protocol):
    """A data source with a chat template (a Hugging Face tokenizer's): messages -> the prompt text."""

    def format_chat(self, messages: list[dict[str, str]]) -> str:
        """The prompt of ``messages`` (``role``, ``content``), ending where the assistant's answer starts."""
        ...


def default_chat(messages: list[dict[str, str]]) -> str:
    """`DEFAULT_CHAT_TEMPLATE`: ``Role: content`` lines, then ``Assistant:``."""
    return "".join(f"{_ROLES[m['role']]}: {m['content']}\n" for m in messages) + "Assistant:"


@dataclass(frozen=True)
class LMLimits:
    """Per-request limits: the longest prompt (tokens; default: the model's context), ``max_tokens``'s bound,
    the generations in progress at once (streams or not), and the batch a round of arrivals forms."""

    max_prompt_tokens: int | None = None
    max_tokens: int = 512
    max_streams: int = 16
    max_batch_size: int = 8
    max_wait_ms: float = 5.0


class _Error(Exception):
    def __init__(self, status: int, message: str, code: str = "invalid_request_error") -> None:
        super().__init__(message)
        self.status, self.message, self.code = status, message, code

    def response(self) -> Response:
        kind = {401: "authentication_error", 404: "not_found_error", 429: "rate_limit_error"}.get(
            self.status, "invalid_request_error"
        )
        body = {"error": {"message": self.message, "type": kind, "code": self.code, "param": None}}
        return Response(json.dumps(body), self.status, media_type="application/json")


def can_mount(task_class: Any, source: Any, checked_source: bool = True) -> bool:
    """The run generates text: its task `Generates` step by step or streamed, its source `EncodesText`."""
    steps = implements(task_class, DecodesInSteps) or implements(task_class, StreamsTokens)
    if not (implements(task_class, Generates) and steps):
        return False
    return not checked_source or (source is not None and implements(source, EncodesText))


def mount_openai(app: FastAPI, predictor: Any, check_key: Any, registry: Any, limits: LMLimits | None = None) -> bool:
    """Add the /v1 routes to ``app`` when the run generates text; False (nothing added) otherwise.

    ``predictor``: the server's `engine_deploy.predictor.Predictor` (its run, network ``fn``, data source);
    ``check_key(headers)``: the server's API-key check (raises with ``.status``/``.detail``); ``registry``: the
    server's Prometheus registry (``/metrics`` gains the generation metrics).
    """
    task_class = predictor.run.plan().task.load()
    if not can_mount(task_class, None, checked_source=False):  # checked on the class: other runs build nothing
        return False
    source = predictor._source(EncodesText)
    if not can_mount(task_class, source):
        return False
    limits = limits or LMLimits()
    # the text path's task and network (one copy of the weights); a predictor without one builds the task
    text = getattr(predictor, "text", None)
    task = text.task if text is not None else predictor.run.task(facts=dict(predictor.run.facts))
    service = Generator(task, predictor.fn, GenerationMetrics(registry), limits.max_batch_size, limits.max_wait_ms)
    model_id = predictor.run.path.name
    created = int(predictor.run.path.stat().st_mtime)
    active = {"n": 0}
    app.state.generator = service

    def auth(request: Request) -> None:
        from engine_deploy.endpoint import Headers

        try:
            check_key(Headers(request.scope.get("headers") or []))
        except Exception as exc:
            raise _Error(int(getattr(exc, "status", 401)), str(getattr(exc, "detail", exc)), "invalid_api_key") from exc

    async def body_of(request: Request) -> dict[str, Any]:
        auth(request)
        try:
            body = json.loads(await request.body())
        except (ValueError, UnicodeDecodeError) as exc:
            raise _Error(400, f"the body is not JSON: {exc}") from exc
        if not isinstance(body, dict):
            raise _Error(400, "the body must be a JSON object")
        if body.get("model") not in (None, model_id):
            raise _Error(404, f"model {str(body.get('model'))[:80]!r} does not exist; this server has {model_id!r}",
                         "model_not_found")  # fmt: skip
        return body

    def options(body: dict[str, Any], extra_stop: tuple[str, ...] = ()) -> tuple[dict[str, Any], list[str]]:
        n = body.get("n", 1)
        if n not in (1, None):
            raise _Error(400, f"n must be 1 (one completion per request), got {n!r}")
        if body.get("logprobs") or body.get("echo") or body.get("best_of") not in (None, 1):
            raise _Error(400, "logprobs, echo and best_of are not supported")
        max_tokens = body.get("max_tokens", body.get("max_completion_tokens", 16))
        if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens <= 0:
            raise _Error(400, f"max_tokens must be an integer >= 1, got {max_tokens!r}")
        if max_tokens > limits.max_tokens:
            raise _Error(400, f"max_tokens {max_tokens} is over this server's limit of {limits.max_tokens}")
        stop = body.get("stop") or []
        stop = [stop] if isinstance(stop, str) else stop
        if not isinstance(stop, list) or len(stop) > 4 or not all(isinstance(s, str) and s for s in stop):
            raise _Error(400, "stop must be a string or a list of up to 4 non-empty strings")
        opts = {"max_new_tokens": max_tokens, "seed": body.get("seed")}
        for key, default in (("temperature", 1.0), ("top_p", 1.0), ("top_k", 0)):
            opts[key] = default if body.get(key) is None else body[key]
        return opts, [*stop, *extra_stop]

    def encode(prompt: Any) -> list[int]:
        if isinstance(prompt, list) and len(prompt) == 1:
            prompt = prompt[0]
        if not isinstance(prompt, str):
            raise _Error(400, "prompt must be a string (one prompt per request)")
        try:
            ids = source.encode_text(prompt)
        except (ConfigError, EngineError) as exc:
            raise _Error(400, str(exc).splitlines()[0]) from exc
        if limits.max_prompt_tokens is not None and len(ids) > limits.max_prompt_tokens:
            raise _Error(400, f"the prompt is {len(ids)} tokens, over the limit of {limits.max_prompt_tokens}")
        return ids

    async def run(request: Request, chat: bool) -> Response:
        body = await body_of(request)
        if chat:
            messages = body.get("messages")
            ok = isinstance(messages, list) and messages and all(
                isinstance(m, dict) and m.get("role") in _ROLES and isinstance(m.get("content"), str) for m in messages
            )  # fmt: skip
            if not ok:
                raise _Error(400, "messages must be a non-empty list of {role: system|user|assistant, content}")
            try:
                prompt = source.format_chat(messages) if implements(source, FormatsChat) else default_chat(messages)
            except (ConfigError, EngineError) as exc:  # e.g. a tokenizer without a chat template
                raise _Error(400, str(exc).splitlines()[0]) from exc
            opts, stop = options(body, () if implements(source, FormatsChat) else ("\nUser:",))
        else:
            prompt = body.get("prompt")
            opts, stop = options(body)
        ids = encode(prompt)
        try:
            service.check(ids, opts)
        except (ConfigError, EngineError) as exc:
            raise _Error(400, str(exc).splitlines()[0]) from exc
        if active["n"] >= limits.max_streams:
            raise _Error(429, f"{limits.max_streams} generations are in progress: retry shortly", "overloaded")
        active["n"] += 1
        import asyncio

        job = Job(ids, opts, asyncio.get_running_loop())
        service.submit(job)
        rid = f"{'chatcmpl' if chat else 'cmpl'}-{uuid.uuid4().hex[:24]}"
        head = {"id": rid, "created": int(time.time()), "model": model_id}
        texts = _texts(job, source, stop, opts["max_new_tokens"])
        if body.get("stream"):
            return StreamingResponse(_events(texts, head, chat, job, active), media_type="text/event-stream")
        try:
            text, reason = "", "length"
            async for delta, finish in texts:
                text += delta
                reason = finish or reason
        finally:
            job.cancelled = True
            active["n"] -= 1
        usage = {"prompt_tokens": len(ids), "completion_tokens": job.count, "total_tokens": len(ids) + job.count}
        if chat:
            message = {"role": "assistant", "content": text}
            out = {**head, "object": "chat.completion", "choices": [{"index": 0, "message": message}]}
        else:
            out = {**head, "object": "text_completion", "choices": [{"index": 0, "text": text, "logprobs": None}]}
        out["choices"][0]["finish_reason"] = reason
        out["usage"] = usage
        return Response(json.dumps(out), media_type="application/json")

    @app.get("/v1/models", summary="the model served (OpenAI-compatible)")
    async def models(request: Request) -> Response:
        try:
            auth(request)
        except _Error as exc:
            return exc.response()
        data = [{"id": model_id, "object": "model", "created": created, "owned_by": "engine"}]
        return Response(json.dumps({"object": "list", "data": data}), media_type="application/json")

    @app.post("/v1/completions", summary="continue a prompt (OpenAI-compatible)")
    async def completions(request: Request) -> Response:
        try:
            return await run(request, chat=False)
        except _Error as exc:
            return exc.response()

    @app.post("/v1/chat/completions", summary="answer a conversation (OpenAI-compatible)")
    async def chat_completions(request: Request) -> Response:
        try:
            return await run(request, chat=True)
        except _Error as exc:
            return exc.response()

    return True


async def _texts(job: Job, source: Any, stop: list[str], max_tokens: int) -> AsyncIterator[tuple[str, str | None]]:
    """Text deltas of a job as its tokens arrive, and the finish reason last (``stop`` or ``length``).

    The whole output is decoded each time (a token may be part of a character); text that could begin a stop
    string is held back until it cannot.
    """
    ids: list[int] = []
    sent = 0
    hold = max((len(s) for s in stop), default=1) - 1
    while True:
        tokens, done = await job.queue.get()
        if isinstance(tokens, Exception):
            raise tokens
        ids += tokens
        text = source.decode_tokens(ids)
        cut = min((i for i in (text.find(s) for s in stop) if i >= 0), default=-1)
        if cut >= 0:
            job.cancelled = True
            yield text[sent:cut], "stop"
            return
        if done:
            yield text[sent:], "length" if len(ids) >= max_tokens else "stop"
            return
        ready = max(sent, len(text) - hold)
        if ready > sent:
            yield text[sent:ready], None
            sent = ready


async def _events(texts: Any, head: dict, chat: bool, job: Job, active: dict) -> AsyncIterator[bytes]:
    """Server-sent events of a streamed completion; a client going away cancels the job and frees its slot."""

    def event(delta: str | None, finish: str | None, first: bool = False) -> bytes:
        if chat:
            d = ({"role": "assistant"} if first else {}) | ({"content": delta} if delta is not None else {})
            choice = {"index": 0, "delta": d, "finish_reason": finish}
            return b"data: " + json.dumps({**head, "object": "chat.completion.chunk", "choices": [choice]}).encode()
        choice = {"index": 0, "text": delta or "", "logprobs": None, "finish_reason": finish}
        return b"data: " + json.dumps({**head, "object": "text_completion", "choices": [choice]}).encode()

    try:
        if chat:
            yield event("", None, first=True) + b"\n\n"
        async for delta, finish in texts:
            if delta:
                yield event(delta, None) + b"\n\n"
            if finish:
                yield event(None, finish) + b"\n\n"
        yield b"data: [DONE]\n\n"
    finally:
        job.cancelled = True
        active["n"] -= 1
