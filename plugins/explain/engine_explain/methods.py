"""Attributions with Captum: which parts of an input moved the model's output for one target.

Four methods, each the Captum class a user would pick:

- ``integrated_gradients``: ``IntegratedGradients`` from a baseline (zeros; ``<pad>`` tokens for text);
- ``saliency``: ``Saliency``, the absolute gradient at the input;
- ``occlusion``: ``Occlusion`` (a window slid over images, spectrograms and feature vectors; for text,
  each token in turn replaced by ``<pad>`` with ``FeatureAblation``): needs no gradient at all;
- ``gradient_shap``: ``GradientShap``, expected gradients against a background of real inputs.

Inputs are float tensors (images ``[C, H, W]``, spectrograms, 2-D matrices, feature vectors), where the
attribution has the input's shape, or token ids, where Captum's layer variants attribute through the
model's token embedding and the result is one score per token.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from engine import EngineError
from engine_explain.plugin import METHODS

GRADIENT_FREE = ("occlusion",)


@dataclass
class Options:
    """How to attribute: method, integration steps, GradientShap samples and background, text padding."""

    method: str = "integrated_gradients"
    steps: int = 50
    samples: int = 16
    background: torch.Tensor | None = None
    pad_id: int = 0


def logits(model: nn.Module) -> Callable[[torch.Tensor], torch.Tensor]:
    """``model`` as Captum needs it: a batch in, ``[batch, outputs]`` out.

    A language model's ``[batch, time, vocab]`` is read at its last position (the next token); a
    regression model's ``[batch]`` becomes ``[batch, 1]``; a tuple output gives its first element.
    """

    def forward(x: torch.Tensor) -> torch.Tensor:
        out = model(x)
        if isinstance(out, (tuple, list)):
            out = out[0]
        if out.dim() == 3:
            out = out[:, -1, :]
        if out.dim() == 1:
            out = out[:, None]
        return out.reshape(len(out), -1)

    return forward


def token_embedding(model: nn.Module, x: torch.Tensor) -> nn.Embedding | None:
    """The ``nn.Embedding`` that reads the token ids ``x`` (a model may hold position embeddings too)."""
    found: list[nn.Embedding] = []
    handles = []
    for module in model.modules():
        if isinstance(module, nn.Embedding):

            def hook(mod: nn.Module, args: tuple[Any, ...], _out: Any) -> None:
                ids = args[0] if args else None
                if isinstance(ids, torch.Tensor) and ids.shape[0] == x.shape[0] and not found:
                    found.append(mod)  # type: ignore[arg-type]

            handles.append(module.register_forward_hook(hook))
    try:
        with torch.no_grad():
            logits(model)(x)
    finally:
        for handle in handles:
            handle.remove()
    return found[0] if found else None


def check_differentiable(model: nn.Module, x: torch.Tensor, method: str) -> nn.Embedding | None:
    """Raise `EngineError` when gradients cannot reach the input; the token embedding for token ids."""
    if method in GRADIENT_FREE:
        return token_embedding(model, x) if not x.is_floating_point() else None
    if not x.is_floating_point():
        embedding = token_embedding(model, x)
        if embedding is None:
            raise EngineError(
                f"the run's model takes {str(x.dtype).removeprefix('torch.')} inputs and has no token embedding "
                f"to attribute through, so Captum cannot differentiate it ({method})",
                hint="use --method occlusion, which needs no gradients",
            )
        return embedding
    probe = x[:1].clone().requires_grad_(True)
    with torch.enable_grad():
        try:
            out = logits(model)(probe)
        except Exception as exc:
            raise EngineError(f"the run's model fails on the input: {type(exc).__name__}: {exc}") from None
    if not out.requires_grad:
        raise EngineError(
            f"Captum cannot differentiate the run's model: its output does not depend on its input through "
            f"gradients (no autograd graph), so {method} has nothing to follow",
            hint="use --method occlusion, which needs no gradients",
        )
    return None


def window(shape: tuple[int, ...]) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Occlusion window and strides for one sample's shape: about 1/8 of each spatial side, all channels."""
    if len(shape) == 1:
        return (1,), (1,)
    sides = shape[-2:]
    size = tuple(max(1, round(s / 8)) for s in sides)
    stride = tuple(max(1, w // 2) for w in size)
    lead = tuple(shape[:-2])
    return (*lead, *size), (*lead, *stride)


def attribute(
    model: nn.Module,
    x: torch.Tensor,
    target: torch.Tensor,
    options: Options,
    embedding: nn.Embedding | None = None,
) -> torch.Tensor:
    """Attributions of ``x`` for output ``target`` (one index per sample).

    Float inputs: a tensor shaped like ``x``. Token ids: ``[batch, tokens]``, the summed attribution
    of each token's embedding (for saliency, the norm of its gradient).
    """
    import captum.attr as ca

    forward = logits(model)
    method = options.method
    if method not in METHODS:
        raise EngineError(f"unknown attribution method '{method}'; choose from {', '.join(METHODS)}")
    torch.manual_seed(0)  # GradientShap draws its baselines and interpolation points at random
    targets = target.tolist()
    try:
        with torch.enable_grad():
            if not x.is_floating_point():
                return _tokens(ca, forward, x, targets, options, embedding)
            if method == "integrated_gradients":
                out = ca.IntegratedGradients(forward).attribute(
                    x,
                    baselines=torch.zeros_like(x),
                    target=targets,
                    n_steps=options.steps,
                    internal_batch_size=max(len(x), min(512, options.steps * len(x))),
                )
            elif method == "saliency":
                out = ca.Saliency(forward).attribute(x.clone().requires_grad_(True), target=targets, abs=True)
            elif method == "occlusion":
                shape, strides = window(tuple(x.shape[1:]))
                out = ca.Occlusion(forward).attribute(
                    x, sliding_window_shapes=shape, strides=strides, baselines=0.0, target=targets
                )
            else:
                background = options.background if options.background is not None else torch.zeros_like(x[:1])
                out = ca.GradientShap(forward).attribute(
                    x, baselines=background.to(x.dtype), n_samples=options.samples, target=targets
                )
    except EngineError:
        raise
    except Exception as exc:
        raise EngineError(
            f"Captum could not compute {method} for the run's model: {type(exc).__name__}: {exc}"
        ) from None
    return out.detach()


def _tokens(
    ca: Any,
    forward: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    targets: list[int],
    options: Options,
    embedding: nn.Embedding | None,
) -> torch.Tensor:
    """Per-token attributions of token ids ``x``: through ``embedding``, or by ablating tokens (occlusion)."""
    pads = torch.full_like(x, options.pad_id)
    if options.method == "occlusion":
        mask = torch.arange(x.shape[1], device=x.device)[None].expand_as(x)
        return ca.FeatureAblation(forward).attribute(x, baselines=pads, target=targets, feature_mask=mask).float()
    assert embedding is not None
    if options.method == "integrated_gradients":
        out = ca.LayerIntegratedGradients(forward, embedding).attribute(
            x,
            baselines=pads,
            target=targets,
            n_steps=options.steps,
            internal_batch_size=max(len(x), min(512, options.steps * len(x))),
        )
        return out.sum(-1)
    if options.method == "saliency":
        grads = ca.LayerGradientXActivation(forward, embedding, multiply_by_inputs=False).attribute(x, target=targets)
        return grads.norm(dim=-1)

    # GradientShap in embedding space: its random points between input and baseline are embeddings (token ids
    # cannot be interpolated); the ids still go in, so that padding masks computed from them stay right.
    def through(embedded: torch.Tensor, ids: torch.Tensor) -> torch.Tensor:
        handle = embedding.register_forward_hook(lambda _m, _a, _o: embedded)
        try:
            return forward(ids)
        finally:
            handle.remove()

    with torch.no_grad():
        embedded, base = embedding(x), embedding(pads[:1])
    out = ca.GradientShap(through).attribute(
        embedded, baselines=base, n_samples=options.samples, target=targets, additional_forward_args=(x,)
    )
    return out.sum(-1)


def ranking(scores: torch.Tensor) -> list[int]:
    """Feature indices by decreasing absolute attribution."""
    return scores.abs().argsort(descending=True).tolist()
