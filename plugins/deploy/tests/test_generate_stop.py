"""``--stop TEXT`` (and a text request's ``stop``) on any run whose source encodes text: the text path cuts the
decoded output at the first stop text, ends a stream there, and never passes the strings to the task."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from engine.testing import one_error


class IdsTask:
    """A task taking ``stop`` as token ids only (as nlp.language_modeling does): strings are refused."""

    def __init__(self) -> None:
        self.streamed = 0

    def generate(
        self, network: Any, inputs: list[list[int]], max_new_tokens: int = 9, stop: Any = ()
    ) -> list[list[int]]:
        assert not any(isinstance(s, str) for s in stop), "a stop string reached a task that takes ids"
        return [[ord(c) for c in "hello world. bye"][:max_new_tokens] for _ in inputs]

    def generate_stream(self, network: Any, ids: list[int], max_new_tokens: int = 9, stop: Any = ()) -> Iterator[int]:
        assert not any(isinstance(s, str) for s in stop)
        for token in self.generate(network, [ids], max_new_tokens)[0]:
            self.streamed += 1
            yield token

    def network_inputs(self, inputs: list[list[int]]) -> tuple[Any, ...]:
        return ()


class Chars:
    def encode_text(self, text: str) -> list[int]:
        return [ord(c) for c in text]

    def decode_tokens(self, ids: list[int]) -> str:
        return "".join(map(chr, ids))


def test_stop_text_cuts_the_output_and_ends_the_stream() -> None:
    from engine_deploy.text import TextPath

    task = IdsTask()
    path = TextPath(task, Chars(), network=None)
    options = path.options({"stop": ". ", "max_new_tokens": 16})
    assert path.generate([[1]], **options) == [{"text": "hello world", "tokens": 11}]
    assert path.generate([[1]], **path.options({"stop": ["zz", "o w"], "max_new_tokens": 16}))[0]["text"] == "hell"
    assert "".join(path.stream([1], **options)) == "hello world"
    assert task.streamed <= len("hello world. ")  # generation ended at the stop, not at max_new_tokens
    whole = path.generate([[1]], **path.options({"stop": "nowhere", "max_new_tokens": 16}))
    assert whole[0]["text"] == "hello world. bye"
    from engine_deploy.inputs import InputError

    with pytest.raises(InputError, match="stop"):
        path.options({"stop": ["ok", ""]})


@pytest.fixture(scope="module")
def lm_run(train: Any, tmp_path_factory: pytest.TempPathFactory) -> Path:
    corpus = tmp_path_factory.mktemp("corpus") / "corpus.txt"
    text = "def main():\n    return f(x)\n\nclass User:\n    pass\n\nSystem: be brief\nAssistant: ok\n\n"
    corpus.write_text(text * 300, encoding="utf-8")
    overrides = ["task=nlp.language_modeling", "model=nlp.gpt", "model.n_layer=1", "model.d_model=32",
                 "model.n_head=2", "data=nlp.text_files", f"data.paths=[{corpus}]", "data.context_length=32",
                 "data.batch_size=16", "optimizer.lr=0.01", "trainer.max_steps=20",
                 "trainer.val_check_interval=20"]  # fmt: skip
    return Path(train(*overrides, root=tmp_path_factory.mktemp("runs"), name="tiny-gpt").run_dir)


@pytest.mark.parametrize("mode", ["--no-stream", "--json"])
def test_generate_stop_text_on_a_language_model_run(cli: Any, lm_run: Path, mode: str) -> None:
    base = ("generate", str(lm_run), "def ", "--temperature", "0", "--max-new-tokens", "24")
    full = cli(*base, "--no-stream")
    assert full.returncode == 0, full.stderr
    whole = full.stdout[:-1]
    stop = whole[3:5]
    cut = cli(*base, "--stop", stop, "--stop", "\x00never", mode)
    assert cut.returncode == 0, cut.stderr
    expected = whole[: whole.find(stop)]
    if mode == "--json":
        import json

        assert json.loads(cut.stdout)["text"] == expected
    else:
        assert cut.stdout == expected + "\n"
    streamed = cli(*base, "--stop", stop)
    assert streamed.returncode == 0 and streamed.stdout == expected + "\n"


def test_generate_empty_stop_text_is_one_line(cli: Any, lm_run: Path) -> None:
    one_error(cli("generate", str(lm_run), "def ", "--stop", ""), "stop")
