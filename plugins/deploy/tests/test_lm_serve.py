"""Language-model runs served and predicted (issue 36): the OpenAI-compatible routes, tested with the official
``openai`` client against a server on 127.0.0.1, and defects 1-2 (predict/serve of an ``nlp.gpt`` run)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

KEY = "lm-test-key"
PROMPT = "def main():\n    "


@pytest.fixture(scope="module")
def lm_run(train: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A character GPT trained for a few steps on a small corpus (a second or two)."""
    corpus = tmp_path_factory.mktemp("corpus") / "corpus.txt"
    text = "def main():\n    return f(x)\n\nclass User:\n    pass\n\nSystem: be brief\nAssistant: ok\n\n"
    corpus.write_text(text * 300, encoding="utf-8")
    overrides = [
        "task=nlp.language_modeling",
        "model=nlp.gpt",
        "model.n_layer=1",
        "model.d_model=32",
        "model.n_head=2",
        "data=nlp.text_files",
        f"data.paths=[{corpus}]",
        "data.context_length=32",
        "data.batch_size=16",
        "optimizer.lr=0.01",
        "trainer.max_steps=30",
        "trainer.val_check_interval=30",
    ]
    return Path(train(*overrides, root=tmp_path_factory.mktemp("runs"), name="tiny-gpt").run_dir)


@pytest.fixture(scope="module")
def lm_server(lm_run: Path) -> Iterator[tuple[str, Any]]:
    from engine_deploy.predictor import Predictor
    from engine_deploy.server import BackgroundServer, create_app

    front = create_app(Predictor(lm_run), api_key=KEY)
    with BackgroundServer(front) as url:
        yield url, front


def _client(url: str, key: str = KEY) -> Any:
    import openai

    return openai.OpenAI(base_url=f"{url}/v1", api_key=key, max_retries=0, timeout=30)


def test_openai_client_lists_completes_chats_and_streams(lm_server: tuple[str, Any], lm_run: Path) -> None:
    url, _ = lm_server
    client = _client(url)
    (model,) = [m.id for m in client.models.list()]
    assert model == lm_run.name
    done = client.completions.create(model=model, prompt=PROMPT, max_tokens=12, temperature=0, seed=1)
    choice = done.choices[0]
    assert choice.finish_reason in ("length", "stop") and isinstance(choice.text, str) and choice.text
    assert done.usage.completion_tokens <= 12 and done.usage.prompt_tokens == len(PROMPT)
    again = client.completions.create(model=model, prompt=PROMPT, max_tokens=12, temperature=0.8, seed=5)
    same = client.completions.create(model=model, prompt=PROMPT, max_tokens=12, temperature=0.8, seed=5)
    assert again.choices[0].text == same.choices[0].text  # seeded
    chat = client.chat.completions.create(
        model=model, messages=[{"role": "user", "content": "def f"}], max_tokens=8, temperature=0
    )
    assert chat.choices[0].message.role == "assistant" and isinstance(chat.choices[0].message.content, str)
    parts = list(client.completions.create(model=model, prompt=PROMPT, max_tokens=12, temperature=0, stream=True))
    assert "".join(p.choices[0].text for p in parts) == choice.text  # streamed = whole, greedy
    assert parts[-1].choices[0].finish_reason == choice.finish_reason
    chunks = list(
        client.chat.completions.create(
            model=model, messages=[{"role": "user", "content": "def f"}], max_tokens=8, temperature=0, stream=True
        )
    )
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == chat.choices[0].message.content
    stop = choice.text[2:4]
    assert len(stop) == 2
    stopped = client.completions.create(model=model, prompt=PROMPT, max_tokens=20, temperature=0, stop=[stop])
    assert stopped.choices[0].text == choice.text[: choice.text.find(stop)]  # the stop string is not returned
    assert stopped.choices[0].finish_reason == "stop"


def test_bad_requests_are_4xx_in_openai_form(lm_server: tuple[str, Any]) -> None:
    import openai

    url, _ = lm_server
    client = _client(url)
    model = client.models.list().data[0].id
    with pytest.raises(openai.AuthenticationError):
        _client(url, "wrong").models.list()
    for kwargs, message in [
        ({"max_tokens": 0}, "max_tokens must be an integer >= 1"),
        ({"max_tokens": -3}, "max_tokens must be an integer >= 1"),
        ({"max_tokens": 100000}, "limit"),
        ({"prompt": "☃"}, "character"),
        ({"prompt": "x" * 200}, "context length"),
        ({"prompt": ""}, "empty"),
        ({"temperature": -1}, "temperature"),
        ({"n": 2}, "n must be 1"),
    ]:
        with pytest.raises(openai.BadRequestError, match=message):
            client.completions.create(**{"model": model, "prompt": PROMPT, "max_tokens": 4, **kwargs})
    with pytest.raises(openai.NotFoundError, match="does not exist"):
        client.completions.create(model="gpt-4", prompt=PROMPT, max_tokens=4)
    with pytest.raises(openai.BadRequestError, match="messages"):
        client.chat.completions.create(model=model, messages=[{"role": "robot", "content": "x"}], max_tokens=4)


def test_concurrent_requests_share_batches_and_metrics_count_tokens(lm_server: tuple[str, Any]) -> None:
    import openai

    url, front = lm_server
    generator = front.app.state.generator
    before = len(generator.batches)

    async def many() -> list[str]:
        client = openai.AsyncOpenAI(base_url=f"{url}/v1", api_key=KEY, max_retries=0, timeout=30)
        model = (await client.models.list()).data[0].id
        calls = [
            client.completions.create(model=model, prompt=PROMPT, max_tokens=10, temperature=0, seed=i)
            for i in range(8)
        ]
        return [r.choices[0].text for r in await asyncio.gather(*calls)]

    texts = asyncio.run(many())
    assert len(set(texts)) == 1  # greedy: batched rows give what one alone gives
    assert max(generator.batches[before:]) > 1  # some arrived together and shared a batch
    import httpx

    metrics = httpx.get(f"{url}/metrics", timeout=10).text
    assert "engine_generated_tokens_total" in metrics and "engine_time_to_first_token_seconds_bucket" in metrics
    assert "engine_generation_tokens_per_second" in metrics


def test_a_client_leaving_mid_stream_frees_its_slot(lm_run: Path) -> None:
    import httpx
    import openai
    from engine_deploy.openai_routes import LMLimits, mount_openai
    from engine_deploy.predictor import Predictor
    from engine_deploy.server import BackgroundServer, create_app

    front = create_app(Predictor(lm_run))
    front.app.router.routes = [r for r in front.app.router.routes if not getattr(r, "path", "").startswith("/v1")]
    from prometheus_client import CollectorRegistry

    limits = LMLimits(max_streams=1, max_tokens=100_000)  # a generation of minutes, unless cancelled
    registry = CollectorRegistry()
    mount_openai(front.app, front.endpoint.predictor, front.endpoint.check_key, registry, limits)
    with BackgroundServer(front) as url:
        body = {"prompt": PROMPT, "max_tokens": 100_000, "stream": True, "temperature": 1.0}
        with httpx.stream("POST", f"{url}/v1/completions", json=body, timeout=30) as r:
            assert r.status_code == 200
            events = r.iter_lines()
            assert next(events).startswith("data: ")  # streaming: the slot is taken
            busy = httpx.post(f"{url}/v1/completions", json={**body, "stream": False, "max_tokens": 2}, timeout=30)
            assert busy.status_code == 429 and "in progress" in busy.json()["error"]["message"]
            r.close()  # the client goes away mid-stream
        deadline = time.monotonic() + 10
        while True:  # the slot comes back once the server sees the disconnect
            r = httpx.post(f"{url}/v1/completions", json={**body, "stream": False, "max_tokens": 2}, timeout=30)
            if r.status_code == 200 or time.monotonic() > deadline:
                break
            time.sleep(0.1)
        assert r.status_code == 200, r.text
        assert registry.get_sample_value("engine_active_generations") == 0  # the long one was cancelled too
        assert registry.get_sample_value("engine_generated_tokens_total") < 50_000
        client = openai.OpenAI(base_url=f"{url}/v1", api_key="unused", max_retries=0, timeout=30)
        assert client.completions.create(model=lm_run.name, prompt=PROMPT, max_tokens=3).choices[0].text is not None


def test_predict_and_serve_an_lm_run(lm_run: Path, tmp_path: Path, cli: Any, lm_server: tuple[str, Any]) -> None:
    """Defects 1 and 2 of issue 36: ``engine predict`` of a prompt file and ``POST /predict`` of a prompt shorter
    than the context on an ``nlp.gpt`` run; token ids outside the vocabulary are a 4xx, never a 500.

    Failed on v3 before the generic text path (exit 1 ``TypeError``; HTTP 500); passes with it and this task's
    `DeclaresIO` / `Generates` / `EncodesText`."""
    import httpx

    prompt = tmp_path / "prompt.txt"
    prompt.write_text(PROMPT, encoding="utf-8")
    r = cli("predict", str(lm_run), str(prompt))
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stderr
    url, _ = lm_server
    headers = {"X-API-Key": KEY}
    ok = httpx.post(f"{url}/predict", json={"inputs": "def main()"}, headers=headers, timeout=30)
    assert ok.status_code == 200, ok.text  # a 10-token prompt (characters), shorter than the context
    for bad in ([[100000] * 10], [[-1] * 10]):
        r = httpx.post(f"{url}/predict", json={"inputs": bad}, headers=headers, timeout=30)
        assert 400 <= r.status_code < 500, (r.status_code, r.text)
        assert json.loads(r.text)["detail"]


def test_deployed_network_generates_what_the_eager_model_generates(lm_run: Path, tmp_path: Path) -> None:
    """The deploy verification samples (temperature 1) with the same seed over the eager model and over the
    artifact, and runs the same loop over both: their generations are the same. Before: 0 of 15 the same (each
    loop drew its own random seed, and the eager model's KV cache refills differently past the context)."""
    from engine_deploy.deploy import deploy

    manifest = deploy(lm_run, "torchscript", out=tmp_path / "ts", timing=False)
    generation = manifest["verification"]["generation"]
    assert generation["same_outputs"] == 1.0 and manifest["verification"]["passed"], generation


def test_a_run_whose_corpus_is_elsewhere_generates_and_serves(lm_run: Path, tmp_path: Path, cli: Any) -> None:
    """A run sent from another machine (its config names a corpus not here): ``engine generate`` and the server use
    the run's tokenizer and checkpoint only. Before: "no text file matches" (the data source read its corpus)."""
    import shutil

    import yaml
    from engine_deploy.predictor import Predictor

    sent = tmp_path / "sent"
    shutil.copytree(lm_run, sent)
    config = yaml.safe_load((sent / "config.yaml").read_text())
    config["data"]["paths"] = [str(tmp_path / "elsewhere" / "corpus.txt")]
    (sent / "config.yaml").write_text(yaml.safe_dump(config))
    r = cli("generate", str(sent), "def ", "--max-new-tokens", "5", "--seed", "0")
    assert r.returncode == 0 and r.stdout.strip(), r.stderr
    predictor = Predictor(sent)
    assert predictor.warmup() is None  # no real input to warm up with: ready at once
    (output,) = predictor.text.generate([predictor.text.source.encode_text(PROMPT)], max_new_tokens=4)
    assert output["tokens"] == 4


@pytest.mark.slow
def test_container_of_an_lm_run_serves_text(lm_run: Path, tmp_path: Path, context_server: Any) -> None:
    """A generating run in a container build context (before: refused): the image serves the exported network and
    runs the task's decoding loop over it; its entry command answers a text prompt outside a container."""
    import yaml
    from engine_deploy.deploy import deploy

    out = tmp_path / "context"
    manifest = deploy(lm_run, "container", out=out, timing=False)
    assert manifest["verification"]["passed"] and manifest["verification"]["generation"]["same_outputs"] == 1.0
    assert {"Dockerfile", "model.pt", "manifest.json", "sample.json", "run", "wheels", "data"} <= {
        p.name for p in out.iterdir()
    }
    assert (out / "run" / "tokenizer.json").is_file()
    sample = json.loads((out / "sample.json").read_text())
    assert isinstance(sample["inputs"][0], str)  # a real test prompt, as text
    config = yaml.safe_load((out / "run" / "config.yaml").read_text())
    config["data"]["paths"] = ["/nowhere/corpus.txt"]  # as in the image: the training corpus is not there
    (out / "run" / "config.yaml").write_text(yaml.safe_dump(config))
    with context_server(out, KEY) as call:
        status, answer = call("/predict", json.dumps({"inputs": [PROMPT]}).encode())
        assert status == 200, answer
        (output,) = answer["outputs"]
        assert isinstance(output["text"], str) and output["text"]


# --------------------------------------------------------------------------- int8 weight-only (torchao)

#: Stated bound: the int8 weight-only model's perplexity within 2 % of the float model's (issue 36's goal).
PPL_DELTA = 0.02


def test_int8_weight_target_keeps_perplexity_and_serves(lm_run: Path, tmp_path: Path) -> None:
    pytest.importorskip("torchao")
    from engine_deploy.deploy import deploy
    from engine_deploy.predictor import Predictor
    from engine_deploy.server import BackgroundServer, create_app
    from engine_deploy.weight_int8 import load_int8_weight
    from engine_nlp.models import GPT
    from engine_nlp.perplexity import perplexity

    import engine

    out = tmp_path / "int8"
    manifest = deploy(lm_run, "int8-weight", out=out, timing=False)
    verification = manifest["verification"]
    assert verification["passed"], verification
    report = verification["target_report"]
    sizes = report["weights_bytes"]
    assert report["quantized_layers"] >= 4 and sizes["int8-weight"] < sizes["float32"]
    assert {"manifest.json", "model.json", "model.safetensors"} <= {p.name for p in out.iterdir()}
    int8 = load_int8_weight(out)
    assert isinstance(int8, GPT) and "int8" in repr(type(int8.blocks[0].fc.weight)).lower() + repr(int8.blocks[0].fc)
    run = engine.open_run(lm_run)
    model = run.model().eval()
    ids = run.datamodule().source.ids["val"].tolist()[:1500]
    fp32 = perplexity(model, ids, model.context_length)["perplexity"]
    q = perplexity(int8, ids, model.context_length)["perplexity"]
    assert abs(q / fp32 - 1) <= PPL_DELTA, (fp32, q)
    task = run.task()
    assert task.generate(int8, [[1, 2, 3]], max_new_tokens=5, temperature=0)[0]  # the KV-cache path of nlp.gpt
    with BackgroundServer(create_app(Predictor(lm_run, out), api_key=KEY)) as url:
        done = _client(url).completions.create(model=lm_run.name, prompt=PROMPT, max_tokens=6, temperature=0)
        assert done.choices[0].finish_reason == "length" and done.usage.completion_tokens == 6


def test_chat_uses_the_sources_template_and_refuses_one_missing(lm_run: Path) -> None:
    """A data source with ``format_chat`` (a Hugging Face tokenizer's template) is used; its refusal is a 400."""
    import openai
    from engine_deploy.openai_routes import FormatsChat, default_chat, mount_openai
    from engine_deploy.predictor import Predictor
    from engine_deploy.server import BackgroundServer, create_app
    from prometheus_client import CollectorRegistry

    from engine import ConfigError

    assert default_chat([{"role": "user", "content": "hi"}]) == "User: hi\nAssistant:"
    predictor = Predictor(lm_run)
    source = predictor.datamodule.source
    seen: list = []

    def format_chat(messages: list) -> str:
        seen.append(messages)
        if messages[-1]["content"] == "no template":
            raise ConfigError("this tokenizer has no chat template")
        return "def " + messages[-1]["content"]

    source.format_chat = format_chat
    assert isinstance(source, FormatsChat)
    front = create_app(predictor)
    front.app.router.routes = [r for r in front.app.router.routes if not getattr(r, "path", "").startswith("/v1")]
    mount_openai(front.app, predictor, front.endpoint.check_key, CollectorRegistry())
    with BackgroundServer(front) as url:
        client = _client(url, "unused")
        chat = client.chat.completions.create(
            model=lm_run.name, messages=[{"role": "user", "content": "main"}], max_tokens=3, temperature=0
        )
        assert seen == [[{"role": "user", "content": "main"}]]  # the source formatted the conversation
        assert chat.choices[0].message.content is not None
        with pytest.raises(openai.BadRequestError, match="no chat template"):
            client.chat.completions.create(
                model=lm_run.name, messages=[{"role": "user", "content": "no template"}], max_tokens=3
            )


def test_serve_holds_one_copy_of_the_weights(lm_run: Path) -> None:
    """/predict (the text path) and the /v1 routes generate with the same task and network: no second model built."""
    from engine_deploy.predictor import Predictor
    from engine_deploy.server import create_app

    predictor = Predictor(lm_run)
    app = create_app(predictor, api_key=KEY).app
    assert app.state.generator.task is predictor.text.task
    assert app.state.generator.network is predictor.fn is predictor.text.network
    tensors = {p.data_ptr() for m in (predictor.fn, predictor.text.task) for p in m.parameters()}
    assert tensors == {p.data_ptr() for p in predictor.fn.parameters()}  # the task's model is the network itself
