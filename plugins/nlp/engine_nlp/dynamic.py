"""Dynamic evaluation (Krause et al., 2018): a language model that keeps learning from the text it is scoring.

The text is read in order in `engine_nlp.windows.ScoredWindows`; each window's new tokens are scored first (that
score is the figure), then the model takes one Adam step on them, so it adapts to the text as it reads it, as a
compressor does (``xz`` builds its dictionary from the text it compresses). No token is ever trained on before it
is scored. The model is a copy: the run's weights are left as they were. This is a different measurement from
the static loss and is always reported beside it (``test/dynamic_bits_per_char`` beside ``test/bits_per_char``),
with its learning rate chosen on the validation text, never on the test text.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Sequence
from typing import Any

import torch
import torch.nn.functional as F

from engine_nlp.windows import IGNORE, ScoredWindows


def dynamic_loss(model: Any, ids: torch.Tensor, context: int, stride: int, lr: float) -> float:
    """Mean nats per scored token of ``ids`` (every token but the first) under dynamic evaluation at ``lr``."""
    windows = ScoredWindows(ids, context, stride)
    with torch.inference_mode(False), torch.enable_grad():
        net = copy.deepcopy(model).float().train()
        for m in net.modules():  # no dropout: the score is the model's prediction, not a noisy one
            if isinstance(m, torch.nn.Dropout):
                m.p = 0.0
        params = [p for p in net.parameters() if p.requires_grad]
        opt = torch.optim.Adam(params, lr=lr, betas=(0.9, 0.999)) if lr > 0 else None
        total, count = 0.0, 0
        for i in range(len(windows)):
            x, y = (t.clone().unsqueeze(0) for t in windows[i])
            logits = net(x)
            nll = F.cross_entropy(logits.reshape(-1, logits.shape[-1]).float(), y.reshape(-1), reduction="sum")
            n = int((y != IGNORE).sum())
            total, count = total + float(nll.detach()), count + n
            if opt is not None:
                opt.zero_grad(set_to_none=True)
                (nll / max(n, 1)).backward()
                torch.nn.utils.clip_grad_norm_(params, 1.0)
                opt.step()
    return total / max(count, 1)


def dynamic_figures(
    model: Any, ids: dict[str, torch.Tensor], context: int, stride: int, lrs: Sequence[float]
) -> dict[str, float]:
    """The learning rate of ``lrs`` that scores the validation text best, and the test text's loss at it (nats per
    token: ``val/dynamic_loss``, ``test/dynamic_loss``, ``dynamic_lr``)."""
    if "val" not in ids or "test" not in ids or not lrs:
        return {}
    val = {lr: dynamic_loss(model, ids["val"], context, stride, lr) for lr in lrs}
    best = min(val, key=val.__getitem__)
    test = dynamic_loss(model, ids["test"], context, stride, best)
    return {"val/dynamic_loss": val[best], "test/dynamic_loss": test, "dynamic_lr": best}


def bits(nats: float) -> float:
    return nats / math.log(2)
