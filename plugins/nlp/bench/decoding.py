"""Decoding speed of the seq2seq model: generated tokens/s with and without the KV cache, greedy and beam 4,
batch 1 and 32 (an untrained model made to emit exactly ``--new-tokens`` tokens: ``</s>`` is never chosen).

    .venv/bin/python plugins/nlp/bench/decoding.py                          # the default size (d_model 256, 3+3)
    .venv/bin/python plugins/nlp/bench/decoding.py --d-model 32 --layers 1 --new-tokens 8 --repeats 1   # tiny

Prints one row per (decoding, batch): tokens/s through full-prefix recompute (what a deployed artifact does),
through the KV cache (the eager model), and their ratio. Tokens/s counts the generated tokens of the batch's
outputs (beam search: of the best hypotheses, not of every beam). Timings on a shared CPU are noisy: use
``--repeats`` and read the median.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import torch
from engine_nlp.seq2seq import decoding
from engine_nlp.seq2seq.model import Seq2SeqTransformer

PAD, BOS, EOS = 0, 1, 2


class NoEos(torch.nn.Module):
    """The model with ``</s>`` masked out, so every output is exactly max_new_tokens long (fair timing)."""

    def __init__(self, model: Seq2SeqTransformer) -> None:
        super().__init__()
        self.model = model

    def forward(self, src: torch.Tensor, tgt: torch.Tensor) -> torch.Tensor:
        out = self.model(src, tgt)
        out[..., EOS] = float("-inf")
        return out

    def start_decoding(self, src: torch.Tensor) -> object:
        return self.model.start_decoding(src)

    def decode_step(self, tokens: torch.Tensor, cache: object) -> torch.Tensor:
        out = self.model.decode_step(tokens, cache)
        out[..., EOS] = float("-inf")
        return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--d-model", type=int, default=256)
    ap.add_argument("--layers", type=int, default=3, help="encoder and decoder layers each")
    ap.add_argument("--vocab", type=int, default=4000)
    ap.add_argument("--src-len", type=int, default=24)
    ap.add_argument("--new-tokens", type=int, default=32)
    ap.add_argument("--batches", type=int, nargs="+", default=[1, 32])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = Seq2SeqTransformer(
        args.vocab, args.vocab, bos_id=BOS, pad_id=PAD, d_model=args.d_model, n_head=4,
        n_encoder_layers=args.layers, n_decoder_layers=args.layers, dropout=0.0,
    ).eval()  # fmt: skip
    net = NoEos(model).eval()
    size = f"d_model {args.d_model}, {args.layers}+{args.layers} layers, vocab {args.vocab}"
    work = f"source {args.src_len} tokens, {args.new_tokens} new tokens, {args.threads} thread(s)"
    print(f"# {size}, {work}, load {os.getloadavg()[0]:.2f}")
    print(f"{'decoding':<10} {'batch':>5} {'recompute tok/s':>16} {'KV cache tok/s':>15} {'speed-up':>9}")
    for beam in (1, 4):
        for batch in args.batches:
            src = torch.randint(3, args.vocab, (batch, args.src_len))
            rates = {}
            for cached in (False, True):
                times = []
                for _ in range(args.repeats):
                    step = decoding.Cached(net, src) if cached else decoding.Recompute(net, src)
                    t0 = time.perf_counter()
                    with torch.no_grad():
                        if beam == 1:
                            out = decoding.greedy(step, batch, BOS, EOS, args.new_tokens)
                        else:
                            out = decoding.beam_search(step, batch, BOS, EOS, args.new_tokens, beam=beam)
                    times.append(time.perf_counter() - t0)
                rates[cached] = sum(len(o) for o in out) / statistics.median(times)
            name = "greedy" if beam == 1 else f"beam {beam}"
            print(
                f"{name:<10} {batch:>5} {rates[False]:>16.0f} {rates[True]:>15.0f} {rates[True] / rates[False]:>8.2f}x"
            )


if __name__ == "__main__":
    main()
