"""The plugin's code: what a third-party author writes (the real one is ``nlp.seq2seq``; same protocols)."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import lightning as L
import torch
import torch.nn.functional as F
from torch import nn

from engine import ConfigError
from engine.data import DataSource

SPECIALS = ("<pad>", "<bos>", "<eos>")
PAD, BOS, EOS = 0, 1, 2


class CharPairs(DataSource):
    """Strings of ``min_length``..``max_length`` characters and their copy (``mode=copy``) or reversal.

    Args:
        num_samples: pairs generated (split 70/15/15).
        min_length: shortest string.
        max_length: longest string (and the longest text ``encode_text`` accepts).
        alphabet: the characters.
        mode: copy or reverse.
        seed: generator seed.
    """

    def __init__(
        self,
        num_samples: int = 600,
        min_length: int = 2,
        max_length: int = 7,
        alphabet: str = "abcdef",
        mode: str = "reverse",
        seed: int = 0,
    ) -> None:
        self.num_samples, self.min_length, self.max_length = num_samples, min_length, max_length
        self.alphabet, self.mode, self.seed = alphabet, mode, seed
        self.vocab = [*SPECIALS, *alphabet]
        self.index = {c: i for i, c in enumerate(self.vocab)}

    @property
    def facts(self) -> dict[str, Any]:
        return {
            "vocab_size": len(self.vocab),
            "pad_id": PAD,
            "bos_id": BOS,
            "eos_id": EOS,
            "max_source_length": self.max_length,
            "problem": "transduction",
        }

    def datasets(self) -> dict[str, Any]:
        rng = random.Random(self.seed)
        pairs = []
        for _ in range(self.num_samples):
            text = "".join(rng.choice(self.alphabet) for _ in range(rng.randint(self.min_length, self.max_length)))
            out = text if self.mode == "copy" else text[::-1]
            pairs.append((torch.tensor(self.encode_text(text)), torch.tensor([*self.encode_text(out), EOS])))
        a, b = int(0.7 * len(pairs)), int(0.85 * len(pairs))
        return {"train": pairs[:a], "val": pairs[a:b], "test": pairs[b:]}

    @staticmethod
    def collate_fn(batch: list[tuple[torch.Tensor, torch.Tensor]]) -> tuple[torch.Tensor, torch.Tensor]:
        """Padded per batch, to the batch's longest source and target."""
        src = nn.utils.rnn.pad_sequence([s for s, _ in batch], batch_first=True, padding_value=PAD)
        tgt = nn.utils.rnn.pad_sequence([t for _, t in batch], batch_first=True, padding_value=PAD)
        return src, tgt

    # EncodesText
    def encode_text(self, text: str) -> list[int]:
        if not text:
            raise ConfigError("empty text: give at least one character")
        if len(text) > self.max_length:
            raise ConfigError(f"text of {len(text)} characters; this model takes at most {self.max_length}")
        unknown = sorted({c for c in text if c not in self.index or self.index[c] < len(SPECIALS)})
        if unknown:
            raise ConfigError(f"unknown characters {''.join(unknown)!r}: the vocabulary is {self.alphabet!r}")
        return [self.index[c] for c in text]

    def decode_tokens(self, ids: Sequence[int]) -> str:
        return "".join(self.vocab[i] for i in ids if len(SPECIALS) <= i < len(self.vocab))

    # SavesArtifacts / LoadsArtifacts: the vocabulary (what a deployment packages)
    def save_artifacts(self, run_dir: Path) -> None:
        (Path(run_dir) / "vocab.json").write_text(json.dumps(self.vocab))

    def load_artifacts(self, run_dir: Path) -> None:
        file = Path(run_dir) / "vocab.json"
        if file.is_file():
            self.vocab = json.loads(file.read_text())
            self.index = {c: i for i, c in enumerate(self.vocab)}

    # LoadsInput: one input per line of a UTF-8 text file
    def load_input(self, path: str) -> list[list[int]]:
        try:
            lines = Path(path).read_text(encoding="utf-8").splitlines()
        except UnicodeDecodeError as exc:
            raise ConfigError(f"{path}: not a UTF-8 text file ({exc.reason} at byte {exc.start})") from None
        return [self.encode_text(line) for line in lines if line.strip()]


class TinySeq2Seq(nn.Module):
    """What the author wrote: an encoder, ``nn.TransformerDecoder`` with a causal mask, padding masks.

    Args:
        vocab_size: tokens (from the data).
        max_source_length: longest source (from the data; positions cover twice that).
        dim: width.
        heads: attention heads.
    """

    def __init__(self, vocab_size: int, max_source_length: int, dim: int = 32, heads: int = 2) -> None:
        super().__init__()
        self.embed = nn.Embedding(vocab_size, dim)
        self.position = nn.Embedding(2 * max_source_length + 4, dim)
        self.encoder = nn.TransformerEncoder(nn.TransformerEncoderLayer(dim, heads, 64, 0.0, batch_first=True), 1)
        self.decoder = nn.TransformerDecoder(nn.TransformerDecoderLayer(dim, heads, 64, 0.0, batch_first=True), 1)
        self.head = nn.Linear(dim, vocab_size)

    def _embed(self, ids: torch.Tensor) -> torch.Tensor:
        return self.embed(ids) + self.position(torch.arange(ids.shape[1], device=ids.device))

    def forward(self, src: torch.Tensor, tgt: torch.Tensor) -> torch.Tensor:
        src_pad = src == PAD
        memory = self.encoder(self._embed(src), src_key_padding_mask=src_pad)
        mask = nn.Transformer.generate_square_subsequent_mask(tgt.shape[1], device=tgt.device)
        out = self.decoder(self._embed(tgt), memory, tgt_mask=mask, memory_key_padding_mask=src_pad)
        return self.head(out)


class Seq2SeqTask(L.LightningModule):
    """Teacher-forced cross-entropy; greedy (or sampled) generation over any network callable.

    Args:
        lr: unused by the factory (kept small).
        max_new_tokens: default generation length bound.
    """

    input_kind = "text"  # DeclaresIO
    output_kind = "text"

    def __init__(self, model: nn.Module, optimizer: Any, max_new_tokens: int = 12) -> None:
        super().__init__()
        self.model, self.optimizer_factory, self.max_new_tokens = model, optimizer, max_new_tokens

    def _loss(self, batch: Any) -> tuple[torch.Tensor, torch.Tensor]:
        src, tgt = batch
        tgt_in = torch.cat([torch.full_like(tgt[:, :1], BOS), tgt[:, :-1]], 1)
        logits = self.model(src, tgt_in)
        loss = F.cross_entropy(logits.transpose(1, 2), tgt, ignore_index=PAD)
        keep = tgt != PAD
        accuracy = ((logits.argmax(-1) == tgt) & keep).sum() / keep.sum()
        return loss, accuracy

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor:
        loss, _ = self._loss(batch)
        self.log("train/loss", loss)
        return loss

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        loss, accuracy = self._loss(batch)
        self.log("val/loss", loss)
        self.log("val/token_accuracy", accuracy)

    def test_step(self, batch: Any, batch_idx: int) -> None:
        self.log("test/token_accuracy", self._loss(batch)[1])

    @property
    def primary_metric(self) -> tuple[str, str]:
        return ("token_accuracy", "max")

    def configure_optimizers(self) -> Any:
        return self.optimizer_factory(self.parameters())

    # Generates
    def network_inputs(self, inputs: list[list[int]]) -> tuple[torch.Tensor, torch.Tensor]:
        src = nn.utils.rnn.pad_sequence([torch.tensor(i) for i in inputs], batch_first=True, padding_value=PAD)
        return src, torch.full((len(inputs), 1), BOS, dtype=torch.long)

    def generate(
        self,
        network: Any,
        inputs: list[list[int]],
        max_new_tokens: int | None = None,
        temperature: float = 0.0,
        top_k: int = 0,
        seed: int = 0,
    ) -> list[list[int]]:
        """Greedy (temperature 0) or sampled decoding, full recompute through ``network(src, tgt)``."""
        limit = self.max_new_tokens if max_new_tokens is None else max_new_tokens
        if limit < 1:
            raise ConfigError(f"max_new_tokens must be >= 1, got {limit}")
        if temperature < 0:
            raise ConfigError(f"temperature must be >= 0, got {temperature}")
        src, tgt = self.network_inputs(inputs)
        generator = torch.Generator().manual_seed(seed)
        done = torch.zeros(len(inputs), dtype=torch.bool)
        with torch.no_grad():
            for _ in range(limit):
                logits = torch.as_tensor(network(src, tgt))[:, -1].float()
                if temperature > 0:
                    if top_k > 0:
                        logits[logits < logits.topk(min(top_k, logits.shape[-1])).values[:, -1:]] = -float("inf")
                    step = torch.multinomial(torch.softmax(logits / temperature, -1), 1, generator=generator)[:, 0]
                else:
                    step = logits.argmax(-1)
                step = torch.where(done, torch.full_like(step, PAD), step)
                tgt = torch.cat([tgt, step[:, None]], 1)
                done |= step == EOS
                if bool(done.all()):
                    break
        out = []
        for row in tgt[:, 1:].tolist():
            ids = [i for i in row if i != PAD]
            out.append(ids[: ids.index(EOS)] if EOS in ids else ids)
        return out

    # StreamsTokens (engine-deploy's optional protocol)
    def generate_stream(self, network: Any, ids: list[int], **options: Any) -> Iterator[int]:
        yield from self.generate(network, [ids], **options)[0]

    # ScoresOutputs: a text task's generated texts against the reference texts (character accuracy)
    def score_outputs(self, outputs: Any, targets: list[Any]) -> dict[str, float]:
        refs = list(targets)
        exact = sum(o == r for o, r in zip(outputs, refs, strict=True)) / max(1, len(refs))
        hits = sum(sum(a == b for a, b in zip(o, r, strict=False)) for o, r in zip(outputs, refs, strict=True))
        return {"exact_match": exact, "token_accuracy": hits / max(1, sum(len(r) for r in refs))}
