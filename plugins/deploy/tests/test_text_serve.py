"""Text in, text out: ``engine predict RUN input.txt``, ``engine serve`` with ``{"inputs": ["text"]}`` and
``engine generate`` / ``engine translate`` on the third-party seq2seq run; every bad input one line or a 4xx."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from engine.testing import one_error


def post(url: str, payload: Any) -> tuple[int, dict[str, Any]]:
    body = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    req = urllib.request.Request(url, data=body, headers={"content-type": "application/json"})
    try:
        with urllib.request.urlopen(req, timeout=30) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


def get(url: str) -> tuple[int, dict[str, Any]]:
    try:
        with urllib.request.urlopen(url, timeout=30) as resp:
            return resp.status, json.loads(resp.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


@pytest.fixture(scope="module")
def server(s2s_run: Path) -> Iterator[str]:
    from engine_deploy.guard import Limits
    from engine_deploy.predictor import Predictor
    from engine_deploy.server import BackgroundServer, create_app

    limits = Limits(max_text_chars=50, max_new_tokens=20, max_samples=4)
    with BackgroundServer(create_app(Predictor(s2s_run), max_batch_size=8, max_wait_ms=10, limits=limits)) as url:
        yield url


def test_serve_text_round_trip(server: str, s2s_run: Path) -> None:
    status, body = post(server + "/predict", {"inputs": ["abc", "fed", "a"]})
    assert status == 200, body
    assert [set(o) for o in body["outputs"]] == [{"text", "tokens"}] * 3
    assert all(isinstance(o["text"], str) for o in body["outputs"])
    assert post(server + "/predict", {"inputs": "abc", "max_new_tokens": 2})[1]["outputs"][0]["tokens"] <= 2
    assert get(server + "/ready") == (200, {"ready": True})
    status, meta = get(server + "/metadata")
    assert meta["input"]["kind"] == "text" and meta["output"] == {"kind": "text", "streams": True}
    assert meta["vocabulary"] == {"vocab_size": 9} and meta["problem"] == "transduction"
    assert meta["generate_options"]["temperature"] == 0.0 and meta["limits"]["max_new_tokens"] == 20


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        ({"inputs": [""]}, "empty text"),
        ({"inputs": ["abz"]}, "unknown characters"),
        ({"inputs": ["abcdefabc"]}, "at most 7"),
        ({"inputs": ["a" * 51]}, "at most 50"),
        ({"inputs": [[3, 4]]}, "takes text"),
        ({"inputs": []}, "list of texts"),
        ({"inputs": ["a"] * 5}, "at most 4"),
        ({"inputs": ["abc"], "max_new_tokens": 21}, "limit of 20"),
        ({"inputs": ["abc"], "max_new_tokens": 0}, "max_new_tokens"),
        ({"inputs": ["abc"], "beam": 2}, "'beam'"),
        ({"inputs": ["abc"], "temperature": "hot"}, "temperature"),
        ({"text": "abc"}, "inputs"),
    ],
)
def test_serve_refuses_bad_text_with_a_reason(server: str, payload: Any, reason: str) -> None:
    status, body = post(server + "/predict", payload)
    assert status == 422 and reason in body["detail"], body


def test_failed_warmup_makes_ready_false(mlp_run: Path) -> None:
    """Issue 36 defect 1: a model failing its warm-up prediction is not ready."""
    from engine_deploy.predictor import Predictor
    from engine_deploy.server import BackgroundServer, create_app

    predictor = Predictor(mlp_run)

    def broken(x: Any) -> Any:
        raise TypeError("type list doesn't define __round__ method")

    predictor.fn = broken
    with BackgroundServer(create_app(predictor)) as url:
        status, body = get(url + "/ready")
    assert status == 503 and body["ready"] is False and "__round__" in body["reason"]


def test_token_ids_outside_the_vocabulary_are_refused(mlp_run: Path) -> None:
    """Issue 36 defect 2: ids of a tensor-input token model outside 0..vocab_size-1 are a 422, not a 500."""
    from engine_deploy.inputs import InputError, check_ids
    from engine_deploy.predictor import Predictor

    predictor = Predictor(mlp_run)
    predictor.vocab_size, predictor.dtype = 50, "int64"
    for bad in ([[100000] * 12], [[-1] * 12]):
        with pytest.raises(InputError, match="outside the vocabulary"):
            predictor.inputs(bad)
    assert predictor.inputs([[49] * 12])[0].shape == (1, 12)
    check_ids(__import__("numpy").array([[0.5]]), 50)  # float inputs are not ids


def test_predict_text_file(cli: Any, s2s_run: Path, tmp_path: Path) -> None:
    file = tmp_path / "input.txt"
    file.write_text("abc\n\nfed\r\nab\n", encoding="utf-8")
    r = cli("predict", str(s2s_run), str(file), "--json")
    assert r.returncode == 0, r.stderr
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    assert [row["text"] for row in rows] == ["abc", "fed", "ab"] and all(isinstance(r["output"], str) for r in rows)
    r = cli("predict", str(s2s_run), str(file))
    assert r.returncode == 0 and "output" in r.stdout and "box" not in r.stdout and "transduction" in r.stdout


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"ab\nxyz\n", "unknown characters"),
        (b"abcdefabcdef\n", "at most 7"),
        (b"\n \n", "no text"),
        ("abc\n".encode("utf-16"), "not a UTF-8 text file"),
    ],
)
def test_predict_bad_text_is_one_line(cli: Any, s2s_run: Path, tmp_path: Path, content: bytes, reason: str) -> None:
    file = tmp_path / "input.txt"
    file.write_bytes(content)
    one_error(cli("predict", str(s2s_run), str(file)), reason, "input.txt")


def test_generate_and_translate(cli: Any, s2s_run: Path) -> None:
    r = cli("generate", str(s2s_run), "abc")
    assert r.returncode == 0, r.stderr
    eager = r.stdout.strip()
    assert set(eager) <= set("abcdef")
    assert cli("translate", str(s2s_run), "abc", "--no-stream").stdout.strip() == eager
    r = cli("generate", str(s2s_run), "abc", "fed", "--json", "--max-new-tokens", "3")
    rows = [json.loads(line) for line in r.stdout.splitlines()]
    assert [row["input"] for row in rows] == ["abc", "fed"] and all(row["tokens"] <= 3 for row in rows)
    sampled = [cli("generate", str(s2s_run), "abc", "--temperature", "1.5", "--seed", "4").stdout for _ in range(2)]
    assert sampled[0] == sampled[1]


def test_generate_over_a_deployed_artifact(cli: Any, s2s_run: Path, tmp_path: Path) -> None:
    from engine_deploy.deploy import deploy

    deploy(s2s_run, "onnx", out=tmp_path, timing=False)
    eager = cli("generate", str(s2s_run), "abcd", "ba", "--json").stdout
    assert cli("generate", str(s2s_run), "abcd", "ba", "--json", "--artifact", str(tmp_path)).stdout == eager


@pytest.mark.parametrize(
    ("args", "reason"),
    [
        (["abc", "--beam", "2"], "--beam"),
        (["abc", "--top-p", "0.9"], "--top-p"),
        (["abc", "--max-new-tokens", "0"], "max_new_tokens"),
        (["", "--no-stream"], "empty text"),
        (["abz"], "unknown characters"),
    ],
)
def test_generate_bad_requests_are_one_line(cli: Any, s2s_run: Path, args: list[str], reason: str) -> None:
    one_error(cli("generate", str(s2s_run), *args), reason)


def test_generate_refuses_a_run_that_does_not_generate(cli: Any, mlp_run: Path) -> None:
    one_error(cli("generate", str(mlp_run), "abc"), "does not generate")


def test_a_task_taking_any_options_checks_them_itself() -> None:
    """``generate(network, inputs, **options)`` (nlp.seq2seq's form): every option is passed, the task refuses."""
    import argparse

    from engine_deploy.generate import given_options
    from engine_deploy.text import TextPath

    from engine import ConfigError

    class Task:
        def generate(self, network: Any, inputs: list[list[int]], **options: Any) -> list[list[int]]:
            if set(options) - {"beam", "max_new_tokens"}:
                raise ConfigError(f"unknown decoding option {sorted(options)[0]!r}")
            return [list(reversed(i))[: options.get("max_new_tokens", 9)] for i in inputs]

        def network_inputs(self, inputs: list[list[int]]) -> tuple[Any, ...]:
            return ()

    class Source:
        def encode_text(self, text: str) -> list[int]:
            return [ord(c) for c in text]

        def decode_tokens(self, ids: list[int]) -> str:
            return "".join(map(chr, ids))

    path = TextPath(Task(), Source(), network=None)
    assert path.open and path.defaults == {}
    assert path.options({"beam": 3}) == {"beam": 3}
    assert path.generate(path.encode(["abc"]), **path.options({"max_new_tokens": 2})) == [{"text": "cb", "tokens": 2}]
    args = argparse.Namespace(beam=4, top_p=None, max_new_tokens=None)
    assert given_options(args, {}, "Task", open_=True) == {"beam": 4}
    with pytest.raises(ConfigError, match="unknown decoding option 'top_p'"):
        path.generate([[1]], top_p=0.9)
