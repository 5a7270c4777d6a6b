from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

#: A small chat template (ChatML, as SmolLM2's) so chat formatting is exercised on tiny models too.
CHAT_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n{{ m['content'] }}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)
VOCAB = 320


@pytest.fixture(autouse=True, scope="session")
def _threads(one_thread: None) -> None:
    """One torch thread: the tiny models here run faster on a shared machine."""


@pytest.fixture(scope="session")
def corpus_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from engine_nlp.corpus import stdlib_text

    text, _ = stdlib_text(20_000)
    path = tmp_path_factory.mktemp("corpus") / "corpus.txt"
    path.write_text(text, encoding="utf-8")
    return path


def make_tokenizer(corpus: Path, vocab: int = VOCAB) -> Any:
    """A byte-level BPE of ``vocab`` tokens trained on the corpus, as a transformers tokenizer with a chat template."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    raw = Tokenizer(models.BPE())
    raw.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    raw.decoder = decoders.ByteLevel()
    specials = ["<|endoftext|>", "<pad>", "<|im_start|>", "<|im_end|>"]
    trainer = trainers.BpeTrainer(
        vocab_size=vocab, special_tokens=specials, initial_alphabet=pre_tokenizers.ByteLevel.alphabet()
    )
    raw.train([str(corpus)], trainer)
    tok = PreTrainedTokenizerFast(
        tokenizer_object=raw, eos_token="<|endoftext|>", bos_token="<|endoftext|>", pad_token="<pad>"
    )
    tok.chat_template = CHAT_TEMPLATE
    return tok


def _config(family: str, vocab: int) -> Any:
    import transformers as t

    if family == "gpt2":
        return t.GPT2Config(
            vocab_size=vocab,
            n_positions=64,
            n_embd=32,
            n_layer=2,
            n_head=2,
            resid_pdrop=0,
            embd_pdrop=0,
            attn_pdrop=0,
            bos_token_id=0,
            eos_token_id=0,  # the tokenizer's <|endoftext|>
        )
    if family == "llama":  # RoPE, RMSNorm, SwiGLU, grouped-query attention (2 key/value heads for 4 query heads)
        return t.LlamaConfig(
            vocab_size=vocab,
            hidden_size=32,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=4,
            num_key_value_heads=2,
            max_position_embeddings=64,
            tie_word_embeddings=False,
        )
    return t.BertConfig(
        vocab_size=vocab,
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=64,
    )


def save_model(family: str, root: Path, corpus: Path, vocab: int = VOCAB, tokenizer_vocab: int | None = None) -> Path:
    """A tiny random model of ``family`` with its tokenizer, written with save_pretrained to ``root/family``."""
    import torch
    import transformers as t

    torch.manual_seed(0)
    cfg = _config(family, vocab)
    cls = t.BertForSequenceClassification if family == "bert" else t.AutoModelForCausalLM
    model = cls(cfg) if family == "bert" else cls.from_config(cfg)
    out = root / family
    model.save_pretrained(str(out))
    make_tokenizer(corpus, tokenizer_vocab or vocab).save_pretrained(str(out))
    return out


@pytest.fixture(scope="session")
def models(tmp_path_factory: pytest.TempPathFactory, corpus_file: Path) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("hf-models")
    return {f: save_model(f, root, corpus_file) for f in ("gpt2", "llama", "bert")}


@pytest.fixture(scope="session")
def make_model() -> Any:
    """``make_model(family, root, corpus, vocab=320, tokenizer_vocab=None) -> Path`` (see `save_model`)."""
    return save_model
