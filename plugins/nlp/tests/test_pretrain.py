"""Options of the pre-train -> fine-tune pipeline: a causal classifier, last-token pooling."""

from __future__ import annotations

import pytest

from engine import ConfigError

torch = pytest.importorskip("torch")


def _classifier(**kw):
    from engine_nlp.models import TransformerClassifier

    torch.manual_seed(0)
    model = TransformerClassifier(vocab_size=50, num_classes=3, context_length=12, pad_id=0, d_model=32, **kw)
    return model.eval()


def _final_states(model, idx):
    """The states after the final LayerNorm, [CLS] slot first."""
    seen = []
    handle = model.ln_f.register_forward_hook(lambda _m, _i, out: seen.append(out))
    with torch.no_grad():
        model(idx)
    handle.remove()
    return seen[0]


@pytest.mark.parametrize("causal", [True, False])
def test_a_causal_classifier_never_reads_ahead(causal: bool) -> None:
    model = _classifier(causal=causal, pooling="mean")
    a = torch.tensor([[5, 6, 7, 8, 9, 10, 11, 0]])
    b = a.clone()
    b[0, 4:7] = torch.tensor([20, 21, 22])  # tokens 4-6 changed
    xa, xb = _final_states(model, a), _final_states(model, b)
    same = torch.allclose(xa[:, :5], xb[:, :5], atol=1e-6)  # [CLS] and tokens 0-3
    assert same == causal
    assert not torch.allclose(xa[:, 5:7], xb[:, 5:7])


def test_last_pooling_reads_the_last_real_token() -> None:
    model = _classifier(causal=True, pooling="last")
    idx = torch.tensor([[5, 6, 7, 0, 0], [5, 6, 7, 8, 9]])
    states = _final_states(model, idx)
    with torch.no_grad():
        logits = model(idx)
    # x[:, 0] is [CLS]: text token i sits at i + 1, so the last real token of row 0 (3 tokens) is at 3
    assert torch.allclose(logits[0], model.head(states[0, 3]), atol=1e-6)
    assert torch.allclose(logits[1], model.head(states[1, 5]), atol=1e-6)
    # padding after the text changes nothing: the same text, unpadded
    with torch.no_grad():
        assert torch.allclose(model(idx[:1, :3]), logits[:1], atol=1e-5)


def test_a_causal_classifier_cannot_pool_its_cls_slot() -> None:
    with pytest.raises(ConfigError, match="sees only itself"):
        _classifier(causal=True, pooling="cls")


def test_extra_snippets_are_more_text_and_never_a_held_out_one() -> None:
    from engine_nlp.data import TextClassification
    from engine_nlp.unlabelled import SEPARATOR, UnlabelledTexts

    split = TextClassification().split_texts()
    plain, more = UnlabelledTexts(), UnlabelledTexts(extra_text="snippets")
    base = plain._texts["train"]
    assert more._texts["train"].startswith(base + SEPARATOR)
    assert more._texts["val"] == plain._texts["val"] == SEPARATOR.join(split["val"])
    extra = more._texts["train"][len(base) + len(SEPARATOR) :]
    snippets = extra.split(SEPARATOR)
    assert len(snippets) > 2000 and all(len(s.splitlines()) == 8 for s in snippets)
    assert not set(snippets) & {t for texts in split.values() for t in texts}
    held = split["val"] + split["test"]
    assert not [t for t in held if t in extra]  # not even inside a longer text
    assert f"and {len(snippets)} stdlib snippets the labelled set leaves out" in more.corpus


def test_extra_snippets_need_the_default_labelled_set(labelled_jsonl) -> None:
    from engine_nlp.unlabelled import UnlabelledTexts

    with pytest.raises(ConfigError, match="default labelled set"):
        UnlabelledTexts(path=str(labelled_jsonl), text_column="body", label_column="package", extra_text="snippets")
