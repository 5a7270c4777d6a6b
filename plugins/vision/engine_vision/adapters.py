"""Weights from timm and torchvision for ``vision.resnet`` (``model.init_from=resnet50.safetensors``).

timm's ResNet-18/34/50 (``timm.create_model("resnet50")``) and torchvision's
(``torchvision.models.resnet50()``) name their tensors alike: ``conv1``, ``bn1``,
``layer1.0.conv1`` … ``layer4.2.bn3``, ``layer2.0.downsample.0``/``.1`` (the projection
shortcut's convolution and norm) and ``fc``. Their blocks are the ones of ``vision.resnet``
with ``stem=imagenet`` (7x7 stride-2 convolution and 3x3 max-pool, stride on the 3x3
convolution of a bottleneck, average pooling, batch norm with eps 1e-5), so
`timm_resnet` only renames, and the model computes what the source model computes::

    conv1.weight            -> stem.1.weight
    bn1.*                   -> stem.2.*
    layer2.0.conv1.weight   -> stages.1.0.conv1.weight
    layer2.0.downsample.1.* -> stages.1.0.shortcut.1.*
    fc.weight               -> head.3.weight

Two differences are adapted and reported: a stem for another number of input channels
(RGB weights on grey digits: the channels are summed, as timm's ``adapt_input_conv`` does;
grey weights on RGB images: repeated and scaled) and a classifier for another number of
classes (left freshly initialised). A file of another depth, width, stem or norm is refused
with the setting that fits it (``model.depth=50``); other timm variants (``resnet50d``'s deep
stem, SE blocks, ResNeXt) are refused by name.
"""

from __future__ import annotations

import math
import re

import torch
from torch import nn

from engine import ConfigError
from engine_vision.models import _DEPTHS, Bottleneck, ResNet

#: What a ResNet's blocks per stage and block type say its depth is (timm's and torchvision's names).
_KNOWN = {
    ((2, 2, 2, 2), False): 18,
    ((3, 4, 6, 3), False): 34,
    ((3, 4, 6, 3), True): 50,
    ((3, 4, 23, 3), True): 101,
    ((3, 8, 36, 3), True): 152,
}
_BLOCK = re.compile(r"layer([1-4])\.(\d+)\.(.+)")
_BLOCK_PART = re.compile(r"(conv[1-3]\.weight|bn[1-3]\.\w+|downsample\.[01]\.\w+)")
_STEM = {"conv1.weight": "stem.1.weight"}
_PLAIN = "use the weights of timm's resnet18, resnet34 or resnet50 (or torchvision's)"


def timm_resnet(state: dict[str, torch.Tensor], model: nn.Module) -> tuple[dict[str, torch.Tensor], list[str]] | None:
    """Map a timm or torchvision ResNet-18/34/50 state dict onto ``vision.resnet``'s keys.

    Returns ``None`` for a state dict of another layout (the engine then matches keys by name),
    else the tensors under the model's names and notes on what was adapted. Raises
    `engine.ConfigError` naming the setting to change when the file is a ResNet the model
    is not built as (another depth, width, stem or norm), or a variant it cannot represent.
    """
    if not isinstance(model, ResNet):
        return None
    if all(k.startswith("module.") for k in state):  # saved from a DataParallel / DDP wrapper
        state = {k.removeprefix("module."): v for k, v in state.items()}
    if "layer1.0.conv1.weight" not in state or not ("conv1.weight" in state or "conv1.0.weight" in state):
        return None
    _check_variant(state)
    depth = _depth_of(state)
    _check_model(state, model, depth)

    own = model.state_dict()
    mapped: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        name = _rename(key)
        mapped[name if name is not None else key] = value  # an unknown key is reported as unexpected
    for key in own:  # each block's last norm is also registered as `last_bn` (one module, two names)
        if ".last_bn." in key:
            block, _, rest = key.partition(".last_bn.")
            last = "bn3" if isinstance(model.get_submodule(block), Bottleneck) else "bn2"
            if f"{block}.{last}.{rest}" in mapped:
                mapped[key] = mapped[f"{block}.{last}.{rest}"]
    notes = []
    stem = mapped["stem.1.weight"]
    channels = own["stem.1.weight"].shape[1]
    if stem.shape[1] != channels:
        mapped["stem.1.weight"] = adapt_input_conv(stem, channels)
        how = "summed" if channels == 1 else "repeated and scaled"
        notes.append(f"stem.1.weight: {stem.shape[1]} input channels {how} to {channels} (as timm's adapt_input_conv)")
    if "head.3.weight" not in mapped:
        notes.append("head.3: the file has no classifier (fc), left freshly initialised")
    elif mapped["head.3.weight"].shape != own["head.3.weight"].shape:
        classes = mapped["head.3.weight"].shape[0]
        for key in ("head.3.weight", "head.3.bias"):
            mapped.pop(key, None)
        notes.append(
            f"head.3: the file's classifier has {classes} classes, the model {own['head.3.weight'].shape[0]}, "
            "left freshly initialised"
        )
    return mapped, notes


def adapt_input_conv(weight: torch.Tensor, channels: int) -> torch.Tensor:
    """A first convolution's ``weight`` (out, in, kh, kw) for ``channels`` input channels, as timm does.

    One channel: the input channels are summed (a grey image gives what the source model gives for
    that image repeated as RGB). More: the channels are repeated (cycled) and scaled by
    ``in / channels``, so an image whose channels are all equal gives the source model's output
    (``timm.models.adapt_input_conv(channels, weight, base_chans=in)``).
    """
    source = weight.shape[1]
    if channels == source:
        return weight
    w = weight.float()
    if channels == 1:
        w = w.sum(dim=1, keepdim=True)
    else:
        w = w.repeat(1, math.ceil(channels / source), 1, 1)[:, :channels] * (source / channels)
    return w.to(weight.dtype)


def _rename(key: str) -> str | None:
    """The ``vision.resnet`` name of a timm/torchvision ResNet key (None: no such tensor in the model)."""
    if key in _STEM:
        return _STEM[key]
    if key.startswith("bn1."):
        return "stem.2." + key[4:]
    if key in ("fc.weight", "fc.bias"):
        return "head.3." + key[3:]
    match = _BLOCK.fullmatch(key)
    if match is None or not _BLOCK_PART.fullmatch(match[3]):
        return None
    stage, block, part = int(match[1]) - 1, match[2], match[3]
    part = part.replace("downsample.", "shortcut.")
    return f"stages.{stage}.{block}.{part}"


def _check_variant(state: dict[str, torch.Tensor]) -> None:
    """Refuse the timm ResNet variants ``vision.resnet`` cannot represent, by what gives them away."""
    if "conv1.0.weight" in state:
        raise ConfigError(
            "the file is a ResNet with a deep 3-convolution stem (timm's resnet*c/d/s), "
            "vision.resnet has the 7x7 stem of resnet18/34/50",
            hint=_PLAIN,
        )
    extra = sorted({_part(m[3]) for k in state if (m := _BLOCK.fullmatch(k)) and not _BLOCK_PART.fullmatch(m[3])})
    if extra:
        raise ConfigError(
            f"the file's ResNet blocks have parts vision.resnet has not ({', '.join(extra)}): "
            "a timm variant (SE, attention, anti-aliasing, avg-down) rather than resnet18/34/50",
            hint=_PLAIN,
        )


def _part(name: str) -> str:
    if name.startswith("downsample."):
        return "an average-pooled shortcut, downsample.2"  # avg_down: downsample.0 is the pooling
    return name.split(".")[0]


def _depth_of(state: dict[str, torch.Tensor]) -> int:
    counts = tuple(
        len({k.split(".")[1] for k in state if k.startswith(f"layer{i}.") and k.endswith(".conv1.weight")})
        for i in range(1, 5)
    )
    depth = _KNOWN.get((counts, "layer1.0.conv3.weight" in state))
    if depth is None:
        raise ConfigError(f"the file is a ResNet with {list(counts)} blocks per stage, not a known depth", hint=_PLAIN)
    if depth not in _DEPTHS:
        raise ConfigError(
            f"the file is a ResNet-{depth}; vision.resnet is built as ResNet-18, 34 or 50",
            hint="use the weights of a ResNet-18, 34 or 50",
        )
    return depth


def _model_depth(model: ResNet) -> int:
    counts = tuple(len(stage) for stage in model.stages)
    block = type(model.stages[0][0])
    return next(d for d, (b, c) in _DEPTHS.items() if b is block and c == counts)


def _check_model(state: dict[str, torch.Tensor], model: ResNet, depth: int) -> None:
    """The model must be built as the file's ResNet (depth, batch norm, stem, width); else every setting to change."""
    problems, fixes = [], []
    built = _model_depth(model)
    if built != depth:
        problems.append(f"the file holds a ResNet-{depth}, the model is a ResNet-{built}")
        fixes.append(f"model.depth={depth}")
    if not isinstance(model.stages[0][0].bn1, nn.BatchNorm2d):
        problems.append("the file's ResNet has batch norm (with running statistics), the model another norm")
        fixes.append("model.norm=batch")
    conv, stem = state["conv1.weight"], model.stem[1]
    if tuple(conv.shape[2:]) != tuple(stem.weight.shape[2:]):
        problems.append(
            f"the file's stem is a {conv.shape[2]}x{conv.shape[3]} convolution (and max-pool), the model's a "
            f"{stem.kernel_size[0]}x{stem.kernel_size[1]} one (stem=small)"
        )
        fixes.append("model.stem=imagenet")
    if conv.shape[0] != stem.out_channels:
        problems.append(f"the file's ResNet is {conv.shape[0]} channels wide, the model {stem.out_channels}")
        fixes.append(f"model.width={conv.shape[0]}")
    if problems:
        raise ConfigError("; ".join(problems), hint="set " + " ".join(fixes))
    block = model.stages[0][0]
    for part in ("conv1", "conv2"):
        theirs, ours = state.get(f"layer1.0.{part}.weight"), getattr(block, part).weight
        if theirs is not None and theirs.shape != ours.shape:
            raise ConfigError(
                f"the file's first block has {part} of shape {list(theirs.shape)}, vision.resnet's "
                f"{list(ours.shape)}: a wide ResNet or ResNeXt rather than resnet18/34/50",
                hint=_PLAIN,
            )
