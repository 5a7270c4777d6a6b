"""Image classifiers on plain torch: a small CNN, the ResNet family, a Vision Transformer.

Every model takes ``input_shape`` (``[C, H, W]``) and ``num_classes`` from the
data source's facts and maps a batch ``(N, C, H, W)`` to logits ``(N, num_classes)``.
``upsample`` enlarges the input inside the model (bilinear), which helps conv
nets on tiny images such as the 8x8 digits.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Annotated, Literal

import torch
from annotated_types import Ge, Lt
from torch import nn
from torch.utils.checkpoint import checkpoint

from engine import ConfigError
from engine.layers import norm_layer


def _shape(input_shape: Sequence[int], model: str) -> tuple[int, int, int]:
    if len(input_shape) != 3 or any(int(s) < 1 for s in input_shape):
        raise ConfigError(
            f"{model} needs images: input_shape must be [channels, height, width], got {list(input_shape)}",
            hint="use an image data source (vision.digits, vision.image_folder) or set model.input_shape=[C,H,W]",
        )
    c, h, w = (int(s) for s in input_shape)
    return c, h, w


def _check_input(x: torch.Tensor, shape: tuple[int, int, int], model: str, exact: bool) -> None:
    """A clear error when a batch does not have the image shape the model was built for (eager mode only)."""
    if torch.jit.is_tracing() or torch.jit.is_scripting() or torch.compiler.is_compiling():
        return
    got = tuple(x.shape[1:])
    if len(got) != 3 or got[0] != shape[0] or (exact and got != shape):
        want = list(shape) if exact else f"[{shape[0]}, H, W]"
        raise ValueError(f"{model} was built for images of shape {want} (model.input_shape), got {list(got)}")


def _upsampler(upsample: int) -> nn.Module:
    if upsample < 1:
        raise ConfigError(f"upsample must be >= 1, got {upsample}")
    if upsample == 1:
        return nn.Identity()
    return nn.Upsample(scale_factor=upsample, mode="bilinear", align_corners=False)


# --------------------------------------------------------------------------- small CNN


class SmallCNN(nn.Module):
    """A small VGG-style conv net: stages of two 3x3 conv-BN-ReLU layers, each followed by 2x2 max-pooling.

    Args:
        input_shape: [channels, height, width] of one image (from the data).
        num_classes: number of classes (from the data).
        width: channels of the first stage; each later stage doubles them.
        stages: number of conv stages (pooling stops once the feature map is 2x2).
        upsample: enlarge the input by this factor inside the model (bilinear).
        dropout: dropout before the classifier.
        norm: normalisation after each convolution: batch (BatchNorm), group (GroupNorm, per-sample
            statistics, e.g. for differential privacy) or none.
    """

    def __init__(
        self,
        input_shape: list[int],
        num_classes: int,
        width: Annotated[int, Ge(1)] = 32,
        stages: Annotated[int, Ge(1)] = 3,
        upsample: int = 1,
        dropout: Annotated[float, Ge(0), Lt(1)] = 0.1,
        norm: Literal["batch", "group", "none"] = "batch",
    ) -> None:
        super().__init__()
        c, h, w = _shape(input_shape, "vision.cnn")
        if width < 1 or stages < 1:
            raise ConfigError(f"vision.cnn needs width >= 1 and stages >= 1, got width={width}, stages={stages}")
        self.input_shape = (c, h, w)
        layers: list[nn.Module] = [_upsampler(upsample)]
        size = min(h, w) * upsample
        channels = c
        #: per stage: (index in ``features`` just after the stage, its channels, its downsampling factor)
        self.stage_outputs: list[tuple[int, int, int]] = []
        stride = 1
        for i in range(stages):
            out = width * 2**i
            for _ in range(2):
                layers.append(nn.Conv2d(channels, out, 3, padding=1, bias=norm == "none"))
                if norm != "none":  # no placeholder: with BatchNorm the layer indices are those of earlier runs
                    layers.append(norm_layer(norm, out))
                layers.append(nn.ReLU(inplace=True))
                channels = out
            if size >= 4:
                layers.append(nn.MaxPool2d(2))
                size //= 2
                stride *= 2
            self.stage_outputs.append((len(layers), channels, stride))
        self.features = nn.Sequential(*layers)
        self.head = nn.Sequential(
            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(dropout), nn.Linear(channels, num_classes)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_input(x, self.input_shape, "vision.cnn", exact=False)
        return self.head(self.features(x))


# --------------------------------------------------------------------------- ResNet


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, cin: int, planes: int, stride: int, norm: str = "batch") -> None:
        super().__init__()
        bias = norm == "none"
        self.conv1 = nn.Conv2d(cin, planes, 3, stride, 1, bias=bias)
        self.bn1 = norm_layer(norm, planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=bias)
        self.bn2 = norm_layer(norm, planes)
        self.last_bn = self.bn2
        self.shortcut = _shortcut(cin, planes, stride, norm)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(self.conv1(x)))
        return torch.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, cin: int, planes: int, stride: int, norm: str = "batch") -> None:
        super().__init__()
        out = planes * 4
        bias = norm == "none"
        self.conv1 = nn.Conv2d(cin, planes, 1, bias=bias)
        self.bn1 = norm_layer(norm, planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, stride, 1, bias=bias)
        self.bn2 = norm_layer(norm, planes)
        self.conv3 = nn.Conv2d(planes, out, 1, bias=bias)
        self.bn3 = norm_layer(norm, out)
        self.last_bn = self.bn3
        self.shortcut = _shortcut(cin, out, stride, norm)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.relu(self.bn1(self.conv1(x)))
        y = torch.relu(self.bn2(self.conv2(y)))
        return torch.relu(self.bn3(self.conv3(y)) + self.shortcut(x))


def _shortcut(cin: int, cout: int, stride: int, norm: str = "batch") -> nn.Module:
    if stride == 1 and cin == cout:
        return nn.Identity()
    if norm == "none":
        return nn.Sequential(nn.Conv2d(cin, cout, 1, stride))
    return nn.Sequential(nn.Conv2d(cin, cout, 1, stride, bias=False), norm_layer(norm, cout))


_DEPTHS: dict[int, tuple[type[nn.Module], tuple[int, int, int, int]]] = {
    18: (BasicBlock, (2, 2, 2, 2)),
    34: (BasicBlock, (3, 4, 6, 3)),
    50: (Bottleneck, (3, 4, 6, 3)),
}


class ResNet(nn.Module):
    """ResNet-18/34/50 (He et al. 2016) with a stem that adapts to small images.

    The ``imagenet`` stem is a 7x7 stride-2 convolution and a max-pool (4x
    downsampling, for images of about 100 px and more); the ``small`` stem is one
    3x3 stride-1 convolution (CIFAR-style, for 8-64 px). ``auto`` picks
    ``small`` below 96 px. Stages 2-4 halve the feature map while it is larger
    than 1x1, so even 8x8 inputs work.

    Args:
        input_shape: [channels, height, width] of one image (from the data).
        num_classes: number of classes (from the data).
        depth: 18 or 34 (basic blocks) or 50 (bottleneck blocks).
        width: channels of the first stage (64 in the paper; 16-32 suit small data).
        stem: imagenet, small, or auto (small when the upsampled image is below 96 px).
        upsample: enlarge the input by this factor inside the model (bilinear).
        dropout: dropout before the classifier.
        zero_init_residual: start each residual branch at zero (last norm weight 0, or last conv weight 0
            without normalisation), which helps training.
        norm: normalisation after each convolution: batch (BatchNorm), group (GroupNorm, per-sample
            statistics, e.g. for differential privacy) or none.
    """

    def __init__(
        self,
        input_shape: list[int],
        num_classes: int,
        depth: Literal[18, 34, 50] = 18,
        width: Annotated[int, Ge(1)] = 64,
        stem: Literal["auto", "imagenet", "small"] = "auto",
        upsample: int = 1,
        dropout: Annotated[float, Ge(0), Lt(1)] = 0.0,
        zero_init_residual: bool = True,
        norm: Literal["batch", "group", "none"] = "batch",
    ) -> None:
        super().__init__()
        c, h, w = _shape(input_shape, "vision.resnet")
        if depth not in _DEPTHS:
            raise ConfigError(f"vision.resnet depth must be 18, 34 or 50, got {depth}")
        if width < 1:
            raise ConfigError(f"vision.resnet width must be >= 1, got {width}")
        self.input_shape = (c, h, w)
        block, counts = _DEPTHS[depth]
        size = min(h, w) * upsample
        if stem == "auto":
            stem = "small" if size < 96 else "imagenet"
        bias = norm == "none"
        if stem == "imagenet":
            self.stem = nn.Sequential(
                _upsampler(upsample),
                nn.Conv2d(c, width, 7, 2, 3, bias=bias),
                norm_layer(norm, width),
                nn.ReLU(inplace=True),
                nn.MaxPool2d(3, 2, 1),
            )
            size = max(1, size // 4)
            total = 4
        else:
            self.stem = nn.Sequential(
                _upsampler(upsample), nn.Conv2d(c, width, 3, 1, 1, bias=bias), norm_layer(norm, width), nn.ReLU(True)
            )
            total = 1
        stages: list[nn.Module] = []
        #: per stage: (its output channels, its downsampling factor relative to the model's input)
        self.stage_outputs: list[tuple[int, int]] = []
        cin = width
        for i, n in enumerate(counts):
            planes = width * 2**i
            stride = 2 if i > 0 and size > 1 else 1
            size = (size + 1) // 2 if stride == 2 else size
            total *= stride
            blocks = []
            for j in range(n):
                blocks.append(block(cin, planes, stride if j == 0 else 1, norm))
                cin = planes * block.expansion  # type: ignore[attr-defined]
            stages.append(nn.Sequential(*blocks))
            self.stage_outputs.append((cin, total))
        self.stages = nn.Sequential(*stages)
        self.head = nn.Sequential(
            nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Dropout(dropout), nn.Linear(cin, num_classes)
        )
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        if zero_init_residual:
            for m in self.modules():
                if isinstance(m, (BasicBlock, Bottleneck)):
                    if isinstance(m.last_bn, nn.Identity):  # no normalisation: zero the branch's last conv
                        nn.init.zeros_((m.conv3 if isinstance(m, Bottleneck) else m.conv2).weight)
                    else:
                        nn.init.zeros_(m.last_bn.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_input(x, self.input_shape, "vision.resnet", exact=False)
        return self.head(self.stages(self.stem(x)))


# --------------------------------------------------------------------------- ViT


def _sincos_2d(rows: int, cols: int, width: int) -> torch.Tensor:
    """``(1, 1 + rows*cols, width)`` 2-D sine-cosine position embedding (zeros for the class token)."""
    quarter = width // 4
    freq = 1.0 / (10000 ** (torch.arange(quarter, dtype=torch.float32) / max(quarter, 1)))
    yy, xx = torch.meshgrid(torch.arange(rows).float(), torch.arange(cols).float(), indexing="ij")
    y, x = yy.flatten()[:, None] * freq, xx.flatten()[:, None] * freq
    emb = torch.cat([x.sin(), x.cos(), y.sin(), y.cos()], 1)
    emb = torch.cat([emb, torch.zeros(rows * cols, width - emb.shape[1])], 1)
    return torch.cat([torch.zeros(1, width), emb])[None]


class ViT(nn.Module):
    """Vision Transformer (Dosovitskiy et al. 2021): patch embedding, pre-norm transformer encoder, class token.

    Args:
        input_shape: [channels, height, width] of one image (from the data).
        num_classes: number of classes (from the data).
        patch_size: side of the square patches; must divide the (upsampled) height and width. Default: the
            largest divisor giving at least 8x8 patches (1 for 8x8 images, 4 for 32x32).
        depth: number of transformer blocks.
        width: embedding dimension.
        heads: attention heads (must divide width).
        mlp_ratio: hidden size of each block's MLP, relative to width.
        dropout: dropout in attention, MLP and embeddings.
        pool: classify from the class token (cls) or the mean of the patch tokens (mean).
        upsample: enlarge the input by this factor inside the model (bilinear).
        gradient_checkpointing: recompute each block's activations in the backward pass while training.
    """

    def __init__(
        self,
        input_shape: list[int],
        num_classes: int,
        patch_size: Annotated[int, Ge(1)] | None = None,
        depth: Annotated[int, Ge(1)] = 6,
        width: Annotated[int, Ge(1)] = 192,
        heads: Annotated[int, Ge(1)] = 3,
        mlp_ratio: float = 4.0,
        dropout: Annotated[float, Ge(0), Lt(1)] = 0.0,
        pool: Literal["cls", "mean"] = "cls",
        upsample: int = 1,
        gradient_checkpointing: bool = False,
    ) -> None:
        super().__init__()
        self.gradient_checkpointing = gradient_checkpointing
        c, h, w = _shape(input_shape, "vision.vit")
        self.input_shape = (c, h, w)
        h, w = h * upsample, w * upsample
        if patch_size is None:
            g = math.gcd(h, w)
            patch_size = max([p for p in range(1, g + 1) if g % p == 0 and h // p >= 8 and w // p >= 8] or [1])
        if patch_size < 1 or h % patch_size or w % patch_size:
            raise ConfigError(
                f"vision.vit patch_size {patch_size} does not divide the image size {h}x{w}",
                hint="choose a model.patch_size dividing both sides (or resize the images: data.image_size)",
            )
        if depth < 1 or width < 1 or heads < 1 or width % heads:
            raise ConfigError(
                f"vision.vit needs depth, width, heads >= 1 and heads dividing width; got depth={depth}, "
                f"width={width}, heads={heads}"
            )
        self.patch_size = patch_size
        self.pool = pool
        self.upsample = _upsampler(upsample)
        self.embed = nn.Conv2d(c, width, patch_size, patch_size)
        self.cls = nn.Parameter(torch.zeros(1, 1, width))
        # 2-D sin-cos initialisation (learned afterwards): positions are informative from the first step,
        # which matters with small patches (patch 1 on 8x8 digits: a token is one pixel).
        self.pos = nn.Parameter(_sincos_2d(h // patch_size, w // patch_size, width))
        self.drop = nn.Dropout(dropout)
        layer = nn.TransformerEncoderLayer(
            width,
            heads,
            int(width * mlp_ratio),
            dropout,
            activation="gelu",
            batch_first=True,
            norm_first=True,
        )
        self.encoder = nn.TransformerEncoder(layer, depth, norm=nn.LayerNorm(width), enable_nested_tensor=False)
        self.head = nn.Linear(width, num_classes)
        nn.init.trunc_normal_(self.cls, std=0.02)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_input(x, self.input_shape, "vision.vit", exact=True)
        tokens = self.embed(self.upsample(x)).flatten(2).transpose(1, 2)  # (N, patches, width)
        tokens = torch.cat([self.cls.expand(tokens.shape[0], -1, -1), tokens], 1) + self.pos
        if self.gradient_checkpointing and self.training:  # block by block, each recomputed in the backward pass
            out = self.drop(tokens)
            for block in self.encoder.layers:
                out = checkpoint(block, out, use_reentrant=False)
            out = self.encoder.norm(out)
        else:
            out = self.encoder(self.drop(tokens))
        return self.head(out[:, 0] if self.pool == "cls" else out[:, 1:].mean(1))
