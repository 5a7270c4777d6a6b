"""The held-out accent/variant split, evaluated beside the test split: ``heldout/...`` metrics.

Lightning's test loop sees one test split; this callback (added by the plugin's ``engine_callbacks``
hook when the data has a ``heldout`` split) evaluates the same weights on it at the end of every test
epoch and logs ``heldout/accuracy`` (keyword spotting) or ``heldout/wer``, ``heldout/cer``,
``heldout/exact`` (and ``heldout/wer_greedy`` when the task decodes otherwise) for recognition, so
they land in the run's summary next to ``test/...``.
"""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
from torch.utils.data import DataLoader


def _text(ids: list[int], vocabulary: list[str]) -> str:
    return " ".join("".join(vocabulary[i - 1] for i in ids).split())


def heldout_metrics(module: Any, dataset: Any, batch_size: int = 64, collate_fn: Any = None) -> dict[str, float]:
    """Metrics of ``module`` (a CTC task or a classifier task) on ``dataset``, no gradients."""
    from torchmetrics.functional.text import char_error_rate, word_error_rate

    loader = DataLoader(dataset, batch_size=batch_size, collate_fn=collate_fn)
    correct = total = 0
    hyps: dict[str, list[str]] = {}
    refs: list[str] = []
    ctc = hasattr(module, "transcribe")
    decoders = [module.decoder, *(["greedy"] if ctc and module.decoder != "greedy" else [])] if ctc else []
    with torch.no_grad():
        for batch in loader:
            x, y = batch
            if ctc:
                feats, lens = (t.to(module.device) for t in x)
                log_probs, out_lens = module.model((feats, lens))
                for name in decoders:
                    hyps.setdefault(name, []).extend(module.transcribe(log_probs, out_lens, name))
                ids, n = y
                refs += [_text(t[:k].tolist(), module.vocabulary) for t, k in zip(ids, n.tolist(), strict=True)]
            else:
                pred = module(x.to(module.device)).argmax(-1).cpu()
                correct += int((pred == y).sum())
                total += len(y)
    if not ctc:
        return {"accuracy": correct / max(total, 1)}
    main = hyps[decoders[0]]
    out = {
        "wer": float(word_error_rate(main, refs)),
        "cer": float(char_error_rate(main, refs)),
        "exact": sum(h == r for h, r in zip(main, refs, strict=True)) / max(len(refs), 1),
    }
    if len(decoders) > 1:
        out["wer_greedy"] = float(word_error_rate(hyps["greedy"], refs))
    return out


class HeldoutTest(L.Callback):
    """Evaluate the test weights on the data's ``heldout`` split too (see the module docstring)."""

    def on_test_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        dm = trainer.datamodule
        source = getattr(dm, "source", None)
        dataset = source.datasets().get("heldout") if source is not None else None
        if dataset is None or len(dataset) == 0:
            return
        collate = getattr(dm, "collate_fn", None)
        for key, value in heldout_metrics(pl_module, dataset, dm.batch_size, collate).items():
            pl_module.log(f"heldout/{key}", value)
