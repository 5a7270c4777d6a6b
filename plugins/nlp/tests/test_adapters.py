"""Weights from elsewhere: Hugging Face GPT-2 -> nlp.gpt, and an nlp.gpt run -> nlp.transformer_classifier.

The GPT-2 models are tiny, random and made here from a config (no download); their tokenizer is a byte-level
BPE trained here with GPT-2's one special token, ``<|endoftext|>``, as Hugging Face's ``tokenizer.json`` has.
"""

from __future__ import annotations

import inspect
import json
import shutil
from pathlib import Path
from typing import Any

import pytest

import engine
from engine import ConfigError, EngineError
from engine.testing import run_cli, train_run

transformers = pytest.importorskip("transformers")
torch = pytest.importorskip("torch")

SIZE = {"n_layer": 2, "n_head": 4, "n_embd": 32, "n_positions": 64}
GPT = ["model=nlp.gpt", "model.n_layer=2", "model.n_head=4", "model.d_model=32", "model.bias=true"]


def _hf_tokenizer(text: str, path: Path) -> int:
    """A GPT-2-style tokenizer.json (byte-level BPE, ``<|endoftext|>`` its only special token); its size."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=320,
        special_tokens=["<|endoftext|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator([text], trainer=trainer)
    tok.save(str(path))
    return int(tok.get_vocab_size())


def _hf_model(vocab: int, eot: int, tied: bool = True) -> Any:
    """A random GPT2LMHeadModel whose biases and LayerNorm gains are random too (a wrong mapping shows)."""
    config = transformers.GPT2Config(
        vocab_size=vocab, bos_token_id=eot, eos_token_id=eot, tie_word_embeddings=tied, **SIZE
    )
    torch.manual_seed(0)
    model = transformers.GPT2LMHeadModel(config).eval()
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() == 1:
                p.add_(torch.randn_like(p) * 0.1)
    return model


@pytest.fixture(scope="module")
def gpt2(tmp_path_factory: pytest.TempPathFactory, corpus_file: Path) -> dict[str, Any]:
    """GPT-2 weights as Hugging Face writes them: DIR/model.safetensors, config.json, tokenizer.json, and a .bin."""
    out = tmp_path_factory.mktemp("gpt2")
    vocab = _hf_tokenizer(corpus_file.read_text(encoding="utf-8"), out / "tokenizer.json")
    eot = json.loads((out / "tokenizer.json").read_text())["model"]["vocab"]["<|endoftext|>"]
    model = _hf_model(vocab, eot)
    model.save_pretrained(out)  # model.safetensors without lm_head.weight (tied), config.json
    torch.save(model.state_dict(), out / "pytorch_model.bin")  # the older format: every key, lm_head included
    untied = out / "untied"
    _hf_model(vocab, eot, tied=False).save_pretrained(untied)
    shutil.copy(out / "tokenizer.json", untied / "tokenizer.json")
    return {"dir": out, "vocab": vocab, "eot": eot, "model": model, "untied": untied}


def _built(overrides: list[str]) -> Any:
    """The model as a run would build it (its init_from applied)."""
    return engine.build(engine.plan(engine.compose(None, overrides=overrides))).slots["model"].eval()


def _init_report(model: Any) -> dict[str, Any]:
    """What ``model.init_from`` did (the techniques plugin records it on the model)."""
    from engine_techniques.transfer import INIT_ATTR

    return getattr(model, INIT_ATTR)


def _built_gpt(overrides: list[str]) -> Any:
    """nlp.gpt as a language-modelling run would build it, on the corpus file's data."""
    return _built(["task=nlp.language_modeling", "data=nlp.text_files", *overrides])


def _tokens(gpt2: dict[str, Any], corpus_file: Path, n: int = 32) -> Any:
    from engine_nlp.tokenizer import TextTokenizer

    ids = TextTokenizer.load(gpt2["dir"] / "tokenizer.json").encode(corpus_file.read_text(encoding="utf-8"))
    return torch.tensor([ids[:n], ids[1000 : 1000 + n]])


@pytest.mark.parametrize("file", ["model.safetensors", "pytorch_model.bin"])
def test_hf_gpt2_weights_give_hf_gpt2_logits(gpt2: dict[str, Any], corpus_file: Path, file: str) -> None:
    weights = gpt2["dir"] / file
    data = [f"data.paths=[{corpus_file}]", f"data.tokenizer_file={gpt2['dir'] / 'tokenizer.json'}"]
    model = _built_gpt([*GPT, *data, "data.context_length=32", f"model.init_from={weights}"])
    report = _init_report(model)
    assert report["adapter"] == "engine_nlp.adapters:hf_gpt2_to_gpt"
    assert report["loaded"] == len(model.state_dict()) and report["missing"] == report["unexpected"] == []
    assert "pos_emb.weight: the first 32 of GPT-2's 64 positions" in report["adapted"]
    assert model.head.weight is model.tok_emb.weight  # still tied after loading
    x = _tokens(gpt2, corpus_file)
    with torch.no_grad():
        diff = (model(x) - gpt2["model"](x).logits).abs().max().item()
    print(f"max |logits - HF logits| = {diff:.2e} ({file})")
    assert diff < 1e-4


def test_hf_gpt2_state_dict_of_the_hub_layout(gpt2: dict[str, Any], corpus_file: Path, tmp_path: Path) -> None:
    """The hub's gpt2 file: GPT2Model keys without ``transformer.``, no lm_head, with causal-mask buffers."""
    from safetensors.torch import save_file

    state = {k.removeprefix("transformer."): v.clone() for k, v in gpt2["model"].state_dict().items()}
    del state["lm_head.weight"]
    for i in range(SIZE["n_layer"]):
        state[f"h.{i}.attn.bias"] = torch.tril(torch.ones(1, 1, 64, 64))
    save_file(state, str(tmp_path / "model.safetensors"))
    shutil.copy(gpt2["dir"] / "tokenizer.json", tmp_path / "tokenizer.json")
    data = [f"data.paths=[{corpus_file}]", f"data.tokenizer_file={tmp_path / 'tokenizer.json'}"]
    model = _built_gpt([*GPT, *data, "data.context_length=64", f"model.init_from={tmp_path / 'model.safetensors'}"])
    assert "2 causal-mask buffers (attn.bias) not needed: SDPA masks" in _init_report(model)["adapted"]
    x = _tokens(gpt2, corpus_file, 64)
    with torch.no_grad():
        assert (model(x) - gpt2["model"](x).logits).abs().max().item() < 1e-4


def test_untied_gpt2_needs_untied_gpt(gpt2: dict[str, Any], corpus_file: Path) -> None:
    untied = gpt2["untied"]
    data = [f"data.paths=[{corpus_file}]", f"data.tokenizer_file={untied / 'tokenizer.json'}", "data.context_length=32"]
    init = f"model.init_from={untied / 'model.safetensors'}"
    with pytest.raises(ConfigError, match="not tied to the embedding") as err:
        _built_gpt([*GPT, *data, init])
    assert "model.tie_weights=false" in str(err.value)
    model = _built_gpt([*GPT, *data, init, "model.tie_weights=false"])
    assert model.head.weight is not model.tok_emb.weight
    reference = transformers.GPT2LMHeadModel.from_pretrained(untied).eval()  # a local directory: no download
    x = _tokens(gpt2, corpus_file)
    with torch.no_grad():
        assert (model(x) - reference(x).logits).abs().max().item() < 1e-4


def test_gpt2_weights_refuse_what_would_compute_another_function(gpt2: dict[str, Any], corpus_file: Path) -> None:
    data = [f"data.paths=[{corpus_file}]", f"data.tokenizer_file={gpt2['dir'] / 'tokenizer.json'}"]
    init = f"model.init_from={gpt2['dir'] / 'model.safetensors'}"
    with pytest.raises(ConfigError, match="trained with 4 heads") as err:  # config.json says n_head
        _built_gpt([*GPT, *data, init, "model.n_head=2"])
    assert "set model.n_head=4" in str(err.value)
    config = gpt2["dir"] / "config.json"
    original = config.read_text()
    try:
        config.write_text(json.dumps({**json.loads(original), "activation_function": "relu"}))
        with pytest.raises(ConfigError, match="activation_function relu"):
            _built_gpt([*GPT, *data, init])
    finally:
        config.write_text(original)
    with pytest.raises(ConfigError, match="learned positions, the model rotary"):
        _built_gpt([*GPT, *data, init, "model.positions=rotary"])
    with pytest.raises(ConfigError, match="GPT-2 has 64 positions, the data's context_length is 128"):
        _built_gpt([*GPT, *data, init, "data.context_length=128"])
    with pytest.raises(ConfigError, match="the weights have 2 blocks, the model 3"):
        _built_gpt([*GPT, *data, init, "model.n_layer=3"])


def _one_error_line(r: Any) -> str:
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr
    errors = [line for line in r.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, r.stderr
    return errors[0]


def test_tokenizer_mismatch_is_one_clear_line(
    gpt2: dict[str, Any], corpus_file: Path, tmp_path: Path, cli: Any
) -> None:
    lm = ["task=nlp.language_modeling", *GPT, "data=nlp.text_files", f"data.paths=[{corpus_file}]"]
    lm += ["data.context_length=32", f"run.dir={tmp_path}"]
    # Weights with their tokenizer.json beside them, data that would train its own: refused at --dry-run.
    r = cli("run", *lm, f"model.init_from={gpt2['dir'] / 'model.safetensors'}", "--dry-run")
    line = _one_error_line(r)
    assert "comes with the tokenizer" in line and "would train a new one" in line
    assert f"hint: reuse it: data.tokenizer_file={gpt2['dir'] / 'tokenizer.json'}" in r.stderr
    # Weights alone, data encoded by a tokenizer of another size: refused when the weights are read.
    alone = tmp_path / "alone"
    alone.mkdir()
    shutil.copy(gpt2["dir"] / "pytorch_model.bin", alone)
    r = cli("run", *lm, "data.tokenizer=bpe", "data.vocab_size=400", f"model.init_from={alone}/pytorch_model.bin")
    line = _one_error_line(r)
    assert f"the weights have a {gpt2['vocab']}-token vocabulary, the data's tokenizer 400" in line
    assert "data.tokenizer_file=DIR/tokenizer.json" in r.stderr
    assert not any(tmp_path.glob("*/summary.json"))  # refused before a run directory was made


def test_gpt2_tokenizer_pads_with_endoftext(gpt2: dict[str, Any], tmp_path: Path) -> None:
    from engine_nlp.tokenizer import TextTokenizer

    tok = TextTokenizer.load(gpt2["dir"] / "tokenizer.json")
    assert tok.kind == "bpe" and tok.pad_id == gpt2["eot"] and tok.vocab_size == gpt2["vocab"]
    raw = json.loads((gpt2["dir"] / "tokenizer.json").read_text())
    raw["added_tokens"] = []
    raw["model"]["vocab"].pop("<|endoftext|>")
    (tmp_path / "nopad.json").write_text(json.dumps(raw))
    with pytest.raises(EngineError, match="has no padding token"):
        TextTokenizer.load(tmp_path / "nopad.json")


# --------------------------------------------------------------------------- nlp.gpt run -> classifier


def _classifier(tiny_lm_run: Path, labelled_jsonl: Path, tmp_path: Path, *extra: str) -> list[str]:
    """Overrides of a classifier with the architecture of ``tiny_lm_run``'s GPT (1 block, d 32, 2 heads)."""
    return [
        "model=nlp.transformer_classifier",
        "model.n_layer=1",
        "model.d_model=32",
        "model.n_head=2",
        "data=nlp.text_classification",
        f"data.path={labelled_jsonl}",
        "data.text_column=body",
        "data.label_column=package",
        "data.max_length=32",
        f"run.dir={tmp_path}",
        *extra,
    ]


def test_gpt_run_initialises_the_classifier(tiny_lm_run: Path, labelled_jsonl: Path, tmp_path: Path) -> None:
    from engine.runs import open_run

    tok = f"data.tokenizer_file={tiny_lm_run / 'tokenizer.json'}"
    overrides = _classifier(tiny_lm_run, labelled_jsonl, tmp_path, f"model.init_from={tiny_lm_run}", tok)
    summary = train_run(*overrides, "trainer.max_steps=0", root=tmp_path, name="fine").summary
    report = summary["transfer"]["model"]["init_from"]  # what summary.json says
    assert report["adapter"] == "engine_nlp.adapters:gpt_to_classifier"
    assert report["missing"] == ["cls", "head.bias", "head.weight"]  # fresh: the [CLS] vector and the head
    assert report["unexpected"] == [] and report["reinitialized"] == []
    assert report["loaded"] == 16  # embeddings (2), the block (12), the final norm (2); of 19
    assert "pos_emb.weight: [CLS] at GPT position 0, text token i at GPT position i" in report["adapted"]
    assert "7 biases set to zero (the GPT has none)" in report["adapted"]  # tiny_lm_run: bias=false
    gpt, classifier = open_run(tiny_lm_run).model().state_dict(), _built(overrides).state_dict()
    for key in ("tok_emb.weight", "blocks.0.attn.qkv.weight", "blocks.0.fc.weight", "ln_f.weight"):
        assert torch.equal(classifier[key], gpt[key]), key
    assert torch.equal(classifier["pos_emb.weight"][1:], gpt["pos_emb.weight"][:32])
    assert torch.equal(classifier["pos_emb.weight"][0], gpt["pos_emb.weight"][0])


def test_classifier_from_gpt_mistakes(tiny_lm_run: Path, labelled_jsonl: Path, tmp_path: Path, cli: Any) -> None:
    def plan(overrides: list[str]) -> Any:
        return engine.plan(engine.compose(None, overrides=overrides))

    init = f"model.init_from={tiny_lm_run}"
    with pytest.raises(ConfigError, match="would train a new one") as err:
        plan(_classifier(tiny_lm_run, labelled_jsonl, tmp_path, init))
    assert f"data.tokenizer_file={tiny_lm_run / 'tokenizer.json'}" in str(err.value)
    tok = f"data.tokenizer_file={tiny_lm_run / 'tokenizer.json'}"
    with pytest.raises(ConfigError, match=r"trained with 2 heads .*config.yaml"):
        plan(_classifier(tiny_lm_run, labelled_jsonl, tmp_path, init, tok, "model.n_head=4"))
    longer = _classifier(tiny_lm_run, labelled_jsonl, tmp_path, init, tok, "data.max_length=64")
    with pytest.raises(ConfigError, match="the GPT has 32 positions, fewer than the classifier's max_length 64"):
        _built(longer)
    r = cli("run", *_classifier(tiny_lm_run, labelled_jsonl, tmp_path, init, tok, "model.n_layer=2"))
    line = _one_error_line(r)
    assert "the weights have 1 blocks, the model 2" in line and "model.n_layer=1" in r.stderr


def test_default_heads_are_the_models() -> None:
    from engine_nlp.checks import DEFAULT_HEADS
    from engine_nlp.models import GPT, TransformerClassifier

    for cls in (GPT, TransformerClassifier):
        assert inspect.signature(cls).parameters["n_head"].default == DEFAULT_HEADS


# --------------------------------------------------------------------------- a labelled subset


def test_train_fraction_is_a_stratified_nested_subset(labelled_jsonl: Path) -> None:
    from engine_nlp.data import TextClassification

    def source(fraction: float, subset_seed: int | None = None) -> TextClassification:
        return TextClassification(
            path=str(labelled_jsonl),
            text_column="body",
            label_column="package",
            train_fraction=fraction,
            subset_seed=subset_seed,
        )

    full, tenth, third = source(1.0), source(0.1), source(0.3)
    for split in ("val", "test"):
        assert torch.equal(tenth._idx[split], full._idx[split])
    sets = [set(s._idx["train"].tolist()) for s in (tenth, third, full)]
    assert sets[0] < sets[1] < sets[2]
    for c in range(2):
        n = int((full._y[full._idx["train"]] == c).sum())
        assert int((tenth._y[tenth._idx["train"]] == c).sum()) == round(0.1 * n)
    drawn, drawn_more = source(0.1, subset_seed=1), source(0.3, subset_seed=1)
    assert torch.equal(drawn._idx["test"], full._idx["test"]) and len(drawn._idx["train"]) == len(sets[0])
    assert set(drawn._idx["train"].tolist()) != sets[0]  # another labelled tenth
    assert set(drawn._idx["train"].tolist()) < set(drawn_more._idx["train"].tolist())
    with pytest.raises(ConfigError, match="train_fraction"):
        source(0.0)


def test_unlabelled_texts_are_the_training_split_without_labels(labelled_jsonl: Path) -> None:
    from engine_nlp.data import TextClassification
    from engine_nlp.unlabelled import SEPARATOR, UnlabelledTexts

    columns = {"path": str(labelled_jsonl), "text_column": "body", "label_column": "package"}
    labelled = TextClassification(**columns, seed=3).split_texts()
    lm = UnlabelledTexts(**columns, seed=3, vocab_size=300, context_length=32)
    assert lm._texts["train"] == SEPARATOR.join(labelled["train"])
    assert lm._texts["val"] == SEPARATOR.join(labelled["val"])
    assert set(lm.datasets()) == {"train", "val"}  # the classifier's test texts are not read
    assert lm.facts["vocab_size"] == 300 and lm.facts["context_length"] == 32
    assert "without labels" in lm.facts["corpus"]


def test_the_shipped_pipeline_is_valid(tmp_path: Path) -> None:
    pipeline = Path(__file__).resolve().parents[1] / "pipelines" / "pretrain-finetune.yaml"
    r = run_cli("pipeline", str(pipeline), "--dry-run", "--dir", str(tmp_path / "p"))  # the experiments plugin
    assert r.returncode == 0, r.stderr
    assert "every stage is valid" in r.stderr
    rows = [line.split()[0] for line in r.stdout.splitlines()[1:] if line.strip() and not line.startswith(" ")]
    assert rows == ["pre", "fine", "scratch"]
    assert "(from pre)" in r.stdout and "nlp.gpt on nlp.unlabelled_texts" in r.stdout
