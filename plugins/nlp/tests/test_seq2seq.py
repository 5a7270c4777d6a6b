"""The seq2seq capability: parallel-text data, the encoder-decoder model and its KV cache, decoding, metrics."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from engine import ConfigError

TINY_MODEL = ["model.d_model=32", "model.n_head=2", "model.n_encoder_layers=1", "model.n_decoder_layers=1"]


# --------------------------------------------------------------------------- reading pairs


def test_read_pairs_formats(tmp_path: Path) -> None:
    from engine_nlp.seq2seq.pairs import read_pairs

    tsv = tmp_path / "a.tsv"
    tsv.write_text('He said "hi".\tIl a dit « salut ».\t#1\nGo.\tVa !\t#2\n', encoding="utf-8")
    assert read_pairs(tsv) == [('He said "hi".', "Il a dit « salut »."), ("Go.", "Va !")]
    export = tmp_path / "tatoeba.tsv"
    export.write_text("1276\tLet's try something.\t77\tEssayons quelque chose !\n", encoding="utf-8")
    assert read_pairs(export) == [("Let's try something.", "Essayons quelque chose !")]
    headed = tmp_path / "b.tsv"
    headed.write_text("id\ttarget\tsource\n1\tVa !\tGo.\n", encoding="utf-8")
    assert read_pairs(headed) == [("Go.", "Va !")]
    csv = tmp_path / "c.csv"
    csv.write_text('src,tgt\n"a, b",c\n', encoding="utf-8")
    assert read_pairs(csv, source_column="src", target_column="tgt") == [("a, b", "c")]
    with pytest.raises(ConfigError, match="no 'source' and 'target' columns"):
        read_pairs(csv)
    jsonl = tmp_path / "d.jsonl"
    jsonl.write_text(json.dumps({"source": "one", "target": "un", "x": 1}) + "\n\n", encoding="utf-8")
    assert read_pairs(jsonl) == [("one", "un")]
    one_column = tmp_path / "e.tsv"
    one_column.write_text("only a source\n", encoding="utf-8")
    with pytest.raises(ConfigError, match="line 1: 1 column"):
        read_pairs(one_column)
    latin = tmp_path / "f.tsv"
    latin.write_bytes("caf\xe9\tcoffee\n".encode("latin-1"))
    with pytest.raises(ConfigError, match=r"f\.tsv is not UTF-8"):
        read_pairs(latin)


# --------------------------------------------------------------------------- data sources


@pytest.fixture(scope="module")
def char_source():
    from engine_nlp.seq2seq.data import SyntheticTranslation

    return SyntheticTranslation(num_pairs=200, tokenizer="char", max_source_length=60, max_target_length=60)


def test_synthetic_source_facts_and_padding_per_batch(char_source) -> None:
    from engine.data import SourceDataModule

    facts = char_source.facts
    assert facts["pad_id"] == 0 and facts["bos_id"] != facts["eos_id"]
    assert facts["src_vocab_size"] > facts["eos_id"] and facts["tgt_vocab_size"] > facts["eos_id"]
    ds = char_source.datasets()["train"]
    src, tgt = ds[0]
    assert src[-1] == char_source._specials("source")[2] and tgt[0] == facts["bos_id"] and tgt[-1] == facts["eos_id"]
    collate = char_source.collate_fn
    samples = [ds[i] for i in range(8)]
    s, t = collate(samples)
    assert s.shape == (8, max(len(x) for x, _ in samples)) and t.shape == (8, max(len(y) for _, y in samples))
    shorter = sorted(samples, key=lambda p: len(p[0]))[:2]
    assert collate(shorter)[0].shape[1] < s.shape[1]  # padded to the batch's own longest
    dm = SourceDataModule(char_source, batch_size=4)
    assert dm.collate_fn is not None


def test_encode_decode_and_bad_inputs(char_source, tmp_path: Path) -> None:
    ids = char_source.encode_text("the old dog")
    assert ids[-1] == char_source._specials("source")[2]  # the source side's </s>
    tgt = char_source.encode_pair_side("lo hund", "target")
    assert char_source.decode_tokens(tgt) == "lo hund"  # <s>, </s> dropped
    with pytest.raises(ConfigError, match="empty input"):
        char_source.encode_text("  ")
    with pytest.raises(ConfigError, match="over the limit of 60"):
        char_source.encode_text("the dog " * 20)
    with pytest.raises(ConfigError, match="outside the source vocabulary: 'λ'"):
        char_source.encode_text("the λ dog")
    good = tmp_path / "in.txt"
    good.write_text("the dog\n\na cat\n", encoding="utf-8")
    assert [char_source.decode_source(r) for r in char_source.load_input(str(good))] == ["the dog", "a cat"]
    bad = tmp_path / "in-latin1.txt"
    bad.write_bytes(b"caf\xe9\n")
    with pytest.raises(ConfigError, match=r"in-latin1\.txt is not UTF-8"):
        char_source.load_input(str(bad))


def test_tokenizers_saved_and_loaded(tmp_path: Path, pairs_tsv: Path) -> None:
    from engine_nlp.seq2seq.data import ParallelText

    a = ParallelText(str(pairs_tsv), vocab_size=300, shared_vocab=False)
    a.save_artifacts(tmp_path)
    assert (tmp_path / "tokenizer.json").is_file() and (tmp_path / "target_tokenizer.json").is_file()
    b = ParallelText(str(pairs_tsv), vocab_size=300, seed=1)  # another split: its own tokenizers would differ
    b.load_artifacts(tmp_path)
    assert b.facts["src_vocab_size"] == a.facts["src_vocab_size"] and b.facts["eos_id"] == a.facts["eos_id"]
    assert b.encode_text("the old dogs") == a.encode_text("the old dogs")
    shared = ParallelText(str(pairs_tsv), vocab_size=300, shared_vocab=True)
    assert shared.facts["shared_vocab"] and shared.facts["src_vocab_size"] == shared.facts["tgt_vocab_size"]


# --------------------------------------------------------------------------- model, cache, decoding


def _model(vocab: int = 20, **kw):
    import torch
    from engine_nlp.seq2seq.model import Seq2SeqTransformer

    torch.manual_seed(0)
    return Seq2SeqTransformer(vocab, vocab, bos_id=1, pad_id=0, d_model=32, n_head=4, dropout=0.0, **kw).eval()


def test_kv_cache_decoding_equals_full_recompute() -> None:
    import torch
    from engine_nlp.seq2seq import decoding

    model = _model()
    src = torch.tensor([[5, 6, 7, 8, 2], [9, 10, 2, 0, 0]])
    prefix = torch.tensor([[1, 4, 5, 6], [1, 7, 3, 3]])
    with torch.no_grad():
        full = model(src, prefix)
        cache = model.start_decoding(src)
        steps = torch.stack([model.decode_step(prefix[:, t], cache) for t in range(prefix.shape[1])], dim=1)
    torch.testing.assert_close(steps, full, atol=1e-5, rtol=1e-5)
    with torch.no_grad():
        for beam in (1, 3):
            runs = []
            for cls in (decoding.Cached, decoding.Recompute):
                step = cls(model, src)
                if beam == 1:
                    runs.append(decoding.greedy(step, 2, 1, 2, 12))
                else:
                    runs.append(decoding.beam_search(step, 2, 1, 2, 12, beam=beam))
            assert runs[0] == runs[1] and all(len(r) > 0 for r in runs[0])


def test_padding_is_masked_from_the_source() -> None:
    import torch

    model = _model()
    tgt = torch.tensor([[1, 4, 5]])
    with torch.no_grad():
        a = model(torch.tensor([[5, 6, 2]]), tgt)
        b = model(torch.tensor([[5, 6, 2, 0, 0, 0]]), tgt)
    torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-5)


def test_model_traces_and_scripts_for_any_padded_shape() -> None:
    """TorchScript (trace and script) of one example call agrees with eager on batches of other sizes and lengths:
    the causal mask is explicit, no mask is detected from data."""
    import torch

    model = _model()
    example = (torch.tensor([[5, 6, 7, 2], [8, 2, 0, 0]]), torch.tensor([[1, 1], [1, 1]]))
    other = (
        torch.tensor([[5, 6, 7, 9, 9, 9, 2], [8, 2, 0, 0, 0, 0, 0], [4, 2, 0, 0, 0, 0, 0]]),
        torch.tensor([[1, 3, 4, 5]] * 3),
    )
    with torch.no_grad():
        want = model(*other)
        for program in (torch.jit.trace(model, example), torch.jit.script(model)):
            torch.testing.assert_close(program(*other), want, atol=1e-5, rtol=1e-5)


class FixedSteps:
    """A fake network: next-token probabilities depend only on the prefix's last token.

    Tokens: 0 pad, 1 <s>, 2 </s>, 3 A, 4 B. After <s>: A 0.6, B 0.4. After A: A, B, </s> at 1/3 each (so any
    continuation of A has probability <= 0.6 / 3 = 0.2). After B: </s> 0.99. Greedy takes A (0.6 > 0.4), then
    its best sequence has probability 0.2; beam search finds "B </s>" with 0.396.
    """

    table = {1: [0, 0, 0, 0.6, 0.4], 3: [0, 0, 1 / 3, 1 / 3, 1 / 3], 4: [0, 0, 0.99, 0.005, 0.005]}

    def __call__(self, src, prefix):
        import torch

        probs = torch.tensor([[self.table.get(int(t), self.table[3]) for t in row] for row in prefix])
        return probs.clamp_min(1e-12).log()


def _logprob(seq: list[int]) -> float:
    prev, total = 1, 0.0
    for tok in [*seq, 2]:
        total += math.log(FixedSteps.table.get(prev, FixedSteps.table[3])[tok])
        prev = tok
    return total


def test_beam_search_beats_greedy_where_greedy_is_provably_worse(char_source) -> None:
    import torch
    from engine_nlp.seq2seq.task import Seq2SeqTask

    task = Seq2SeqTask(torch.nn.Linear(1, 1), torch.optim.SGD, bos_id=1, eos_id=2, max_target_length=8)
    inputs = [[5, 2], [6, 7, 2]]
    greedy = task.generate(FixedSteps(), inputs, beam=1)
    beam = task.generate(FixedSteps(), inputs, beam=2, length_penalty=0.0)
    assert greedy[0][0] == 3 and beam == [[4], [4]]
    assert _logprob(beam[0]) > _logprob(greedy[0])
    assert math.isclose(math.exp(_logprob(beam[0])), 0.396)
    with pytest.raises(ConfigError, match="unknown decoding option 'beams' — did you mean 'beam'"):
        task.generate(FixedSteps(), inputs, beams=2)
    with pytest.raises(ConfigError, match="no tokens"):
        task.generate(FixedSteps(), [[]])


def test_network_inputs_and_generate_over_a_plain_callable() -> None:
    import torch
    from engine_nlp.seq2seq.task import Seq2SeqTask

    model = _model()
    task = Seq2SeqTask(model, torch.optim.SGD, bos_id=1, eos_id=2, max_target_length=10)
    src, prefix = task.network_inputs([[5, 6, 2], [7, 2]])
    assert src.tolist() == [[5, 6, 2], [7, 2, 0]] and prefix.shape == (2, 2)
    assert model(src, prefix).shape == (2, 2, 20)
    plain = lambda s, p: model(s, p)  # noqa: E731 -- a deployed artifact: no KV cache
    assert task.generate(plain, [[5, 6, 2], [7, 2]], beam=3) == task.generate(model, [[5, 6, 2], [7, 2]], beam=3)


# --------------------------------------------------------------------------- metrics


def test_bleu_and_chrf_agree_with_sacrebleu() -> None:
    import sacrebleu
    from engine_nlp.seq2seq.metrics import bleu, chrf, exact_match, position_accuracy

    hyps = ["the cat sat on the mat", "lo hund vidt", "a b c d e"]
    refs = ["the cat sat on a mat", "lo hund vidt", "a b x d e f"]
    assert bleu(hyps, refs) == sacrebleu.corpus_bleu(hyps, [refs]).score
    assert chrf(hyps, refs) == sacrebleu.corpus_chrf(hyps, [refs]).score
    assert 0 < bleu(hyps, refs) < 99 and bleu(refs, refs) == pytest.approx(100.0)
    assert exact_match(hyps, refs) == pytest.approx(1 / 3)
    assert position_accuracy([[1, 2, 3], [4]], [[1, 2, 4], [4, 5]]) == pytest.approx(3 / 5)


def test_score_outputs_on_ids(char_source) -> None:
    import sacrebleu
    import torch
    from engine_nlp.seq2seq.task import Seq2SeqTask

    f = char_source.facts
    task = Seq2SeqTask(torch.nn.Linear(1, 1), torch.optim.SGD, bos_id=f["bos_id"], eos_id=f["eos_id"])
    task.detokenize = char_source.decode_tokens
    refs = ["lo hund vidt", "miau fele amt"]
    hyps = ["lo hund vidt", "miau fela amt"]
    ids = lambda texts: [char_source.encode_pair_side(t, "target") for t in texts]  # noqa: E731
    got = task.score_outputs(ids(hyps), ids(refs))
    assert set(got) == {"bleu", "chrf", "exact_match", "token_accuracy"}
    assert got["bleu"] == sacrebleu.corpus_bleu(hyps, [refs]).score and got["exact_match"] == 0.5


def test_baselines() -> None:
    from engine_nlp.seq2seq.baselines import baseline_scores, learn_dictionary
    from engine_nlp.seq2seq.synthetic import sentence_pairs

    pairs = sentence_pairs(600, seed=3)
    d = learn_dictionary(pairs[:500])
    assert d["dog"] == "hund" and d["sees"] in ("vidt", "vid")
    scores = baseline_scores(pairs[:500], pairs[500:])
    # the words right, neither the order nor the missing determiners: far above copying in chrF, low BLEU
    assert scores["copy_chrf"] + 20 < scores["dict_chrf"] < 70 and scores["copy_bleu"] < scores["dict_bleu"] < 20


# --------------------------------------------------------------------------- runs and recipes


def test_translate_tsv_recipe_on_a_written_file(tmp_path: Path, pairs_tsv: Path, cli) -> None:
    from engine.runs import open_run
    from engine.testing import train_run

    refused = cli("run", "nlp/translate-tsv", "--dry-run")
    assert refused.returncode == 2 and "data.path" in refused.stderr
    overrides = [f"data.path={pairs_tsv}", "data.vocab_size=300", "data.batch_size=32", "trainer.max_epochs=1"]
    result = train_run(*overrides, *TINY_MODEL, "task.test_beam=2", root=tmp_path, recipe="nlp/translate-tsv")
    metrics = result.summary["metrics"]
    for name in ("bleu", "chrf", "exact_match", "token_accuracy", "copy_bleu", "dict_bleu"):
        assert f"test/{name}" in metrics
    assert (result.run_dir / "tokenizer.json").is_file() and (result.run_dir / "target_tokenizer.json").is_file()
    run = open_run(result.run_dir)
    source, task = run.datamodule().source, run.task("best")
    out = task.generate(task.model, [source.encode_text("the old dogs see a cat")], beam=2)
    assert isinstance(source.decode_tokens(out[0]), str)
    table = cli("nlp", "baselines", str(result.run_dir))
    assert table.returncode == 0 and "test/bleu" in table.stdout and "(word dictionary)" in table.stdout


def test_no_task_named_gets_the_seq2seq_task(pairs_tsv: Path, cli) -> None:
    out = cli("run", "model=nlp.seq2seq", "data=nlp.parallel_text", f"data.path={pairs_tsv}", "--dry-run")
    assert out.returncode == 0, out.stderr
    assert out.stdout.startswith("task:\n  name: nlp.seq2seq\n")
    wrong = cli("run", "task=nlp.seq2seq", "data=nlp.text_classification", "--dry-run")  # no pairs: refused at once
    assert wrong.returncode == 2 and "needs parameter 'bos_id'" in wrong.stderr


@pytest.mark.slow
def test_tiny_training_beats_copy_and_dictionary_baselines(tmp_path: Path) -> None:
    from engine.testing import train_run

    overrides = [
        "data=nlp.synthetic_translation",
        "data.num_pairs=3000",
        "data.max_adjectives=1",
        "data.val_fraction=0.05",
        "data.test_fraction=0.05",
        "data.batch_size=32",
        "model.d_model=64",
        "model.n_encoder_layers=2",
        "model.n_decoder_layers=2",
        "model.dropout=0.0",
        "optimizer=adamw",
        "optimizer.lr=0.003",
        "trainer.max_epochs=6",
    ]
    m = train_run(*overrides, root=tmp_path).summary["metrics"]
    assert m["test/bleu"] > max(m["test/copy_bleu"], m["test/dict_bleu"]) + 20, m
    assert m["test/chrf"] > m["test/dict_chrf"], m


def test_a_pair_file_that_is_not_utf8_is_one_line_exit_2(tmp_path: Path, cli) -> None:
    latin = tmp_path / "pairs-latin1.tsv"
    latin.write_bytes("caf\xe9\tcoffee\nthé\ttea\n".encode("latin-1"))
    out = cli("run", "nlp/translate-tsv", f"data.path={latin}", f"run.dir={tmp_path / 'runs'}")
    assert out.returncode == 2 and "pairs-latin1.tsv is not UTF-8 text" in out.stderr
    assert "Traceback" not in out.stderr and not (tmp_path / "runs").exists()
