"""Generators and discriminators: MLPs for low-dimensional data, DCGAN for images.

A generator maps latent noise ``(B, latent_dim)`` to samples; it exposes
``latent_dim`` and ``output`` (``"tanh"``: values in [-1, 1], which the task maps
onto the data's value range; ``"linear"``: unbounded). A discriminator maps a
batch of samples to one score per sample, ``(B,)``.
"""

from __future__ import annotations

import math
from typing import Annotated, Literal

import torch
from annotated_types import Ge, Lt
from torch import nn

from engine import ConfigError

_MIN_START, _MAX_START = 3, 8


def _activation(name: str) -> nn.Module:
    if name == "relu":
        return nn.ReLU()
    if name == "leaky_relu":
        return nn.LeakyReLU(0.2)
    if name == "elu":
        return nn.ELU()
    raise ConfigError(f"unknown activation {name!r}; choose relu, leaky_relu or elu")


def _sn(layer: nn.Module, on: bool) -> nn.Module:
    return nn.utils.parametrizations.spectral_norm(layer) if on else layer


class MLPGenerator(nn.Module):
    """MLP generator for low-dimensional data: latent noise -> ``in_features`` values.

    Args:
        in_features: size of one sample (from the data).
        latent_dim: size of the latent noise vector.
        hidden: widths of the hidden layers.
        activation: hidden activation: relu, leaky_relu or elu.
        batch_norm: batch normalisation after each hidden layer.
        output: linear (unbounded values) or tanh (values in [-1, 1], mapped by the task onto the data's range).
    """

    def __init__(
        self,
        in_features: int,
        latent_dim: Annotated[int, Ge(1)] = 16,
        hidden: list[Annotated[int, Ge(1)]] = [256, 256, 256],  # noqa: B006 - read as a literal default by the engine
        activation: Literal["relu", "leaky_relu", "elu"] = "relu",
        batch_norm: bool = False,
        output: Literal["linear", "tanh"] = "linear",
    ) -> None:
        super().__init__()
        if in_features < 1 or latent_dim < 1:
            raise ConfigError("generator.in_features and generator.latent_dim must be positive")
        self.latent_dim, self.output, self.out_features = latent_dim, output, in_features
        layers: list[nn.Module] = []
        width = latent_dim
        for h in hidden:
            layers += [nn.Linear(width, h)]
            if batch_norm:
                layers += [nn.BatchNorm1d(h)]
            layers += [_activation(activation)]
            width = h
        layers.append(nn.Linear(width, in_features))
        if output == "tanh":
            layers.append(nn.Tanh())
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


class MLPDiscriminator(nn.Module):
    """MLP discriminator (critic) on flattened samples: one unbounded score per sample.

    Args:
        in_features: size of one (flattened) sample (from the data).
        hidden: widths of the hidden layers.
        spectral_norm: spectral normalisation of every linear layer.
        dropout: dropout after each hidden layer.
    """

    def __init__(
        self,
        in_features: int,
        hidden: list[Annotated[int, Ge(1)]] = [256, 256, 256],  # noqa: B006
        spectral_norm: bool = False,
        dropout: Annotated[float, Ge(0), Lt(1)] = 0.0,
    ) -> None:
        super().__init__()
        layers: list[nn.Module] = []
        width = in_features
        for h in hidden:
            layers += [_sn(nn.Linear(width, h), spectral_norm), nn.LeakyReLU(0.2)]
            if dropout > 0:
                layers.append(nn.Dropout(dropout))
            width = h
        layers.append(_sn(nn.Linear(width, 1), spectral_norm))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.flatten(1)).squeeze(1)


def dcgan_plan(input_shape: list[int] | tuple[int, ...], who: str) -> tuple[int, int, int, int]:
    """``(channels, upsamplings k, start height, start width)`` for a DCGAN of ``input_shape``, or a ConfigError.

    The generator starts from an ``s x s`` map (3 <= s <= 8) and doubles it ``k >= 1`` times:
    8x8 is 4·2, 28x28 is 7·4, 32x32 is 4·8, 64x64 is 4·16.
    """
    shape = list(input_shape)
    if len(shape) != 3:
        raise ConfigError(
            f"{who} needs image data (input_shape [C, H, W]), got input_shape {shape}",
            hint="for feature vectors use gan.mlp_generator and gan.mlp_discriminator",
        )
    c, h, w = (int(v) for v in shape)
    for k in range(int(math.log2(max(h, w))), 0, -1):
        f = 2**k
        if h % f == 0 and w % f == 0 and _MIN_START <= h // f <= _MAX_START and _MIN_START <= w // f <= _MAX_START:
            return c, k, h // f, w // f
    raise ConfigError(
        f"{who} cannot produce {h}x{w} images: each side must be a start size of "
        f"{_MIN_START}..{_MAX_START} doubled at least once (e.g. 8, 12, 16, 28, 32, 64)",
        hint="resize the images (e.g. data.size for vision.image_folder) or use gan.mlp_generator",
    )


def _widths(width: int, k: int) -> list[int]:
    return [width * 2 ** (k - i) for i in range(k + 1)]  # k=1: [2w, w]; k=3: [8w, 4w, 2w, w]


class DCGANGenerator(nn.Module):
    """DCGAN generator: a dense layer to an ``s x s`` map, then ``k`` stride-2 transposed convs (BN, ReLU).

    Sizes come from ``input_shape``: 8x8, 28x28, 32x32, 64x64 … (sides equal to
    3..8 times a power of two); other sizes are refused before any compute.

    Args:
        input_shape: [channels, height, width] of the images (from the data).
        latent_dim: size of the latent noise vector.
        width: channels of the last upsampling stage (earlier stages double it).
        output: tanh (values in [-1, 1], mapped by the task onto the data's range) or linear.
    """

    def __init__(
        self,
        input_shape: list[int],
        latent_dim: Annotated[int, Ge(1)] = 64,
        width: Annotated[int, Ge(1)] = 32,
        output: Literal["tanh", "linear"] = "tanh",
    ) -> None:
        super().__init__()
        c, k, sh, sw = dcgan_plan(input_shape, "gan.dcgan_generator")
        self.latent_dim, self.output, self.out_shape = latent_dim, output, (c, sh * 2**k, sw * 2**k)
        chans = _widths(width, k)
        self.start = (chans[0], sh, sw)
        self.fc = nn.Sequential(
            nn.Linear(latent_dim, chans[0] * sh * sw, bias=False), nn.BatchNorm1d(chans[0] * sh * sw)
        )
        layers: list[nn.Module] = [nn.ReLU()]
        for i in range(k):
            layers += [
                nn.ConvTranspose2d(chans[i], chans[i + 1], 4, 2, 1, bias=False),
                nn.BatchNorm2d(chans[i + 1]),
                nn.ReLU(),
            ]
        layers.append(nn.Conv2d(chans[-1], c, 3, padding=1))
        if output == "tanh":
            layers.append(nn.Tanh())
        self.net = nn.Sequential(*layers)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(self.fc(z).view(-1, *self.start))


class DCGANDiscriminator(nn.Module):
    """DCGAN discriminator: ``k`` stride-2 convs with LeakyReLU (no batch norm, so WGAN-GP is sound), then linear.

    Args:
        input_shape: [channels, height, width] of the images (from the data).
        width: channels of the first stage (later stages double it).
        spectral_norm: spectral normalisation of every layer.
        dropout: dropout before the final linear layer.
    """

    def __init__(
        self,
        input_shape: list[int],
        width: Annotated[int, Ge(1)] = 32,
        spectral_norm: bool = False,
        dropout: Annotated[float, Ge(0), Lt(1)] = 0.0,
    ) -> None:
        super().__init__()
        c, k, sh, sw = dcgan_plan(input_shape, "gan.dcgan_discriminator")
        chans = _widths(width, k)
        layers: list[nn.Module] = [_sn(nn.Conv2d(c, chans[-1], 3, padding=1), spectral_norm), nn.LeakyReLU(0.2)]
        for i in reversed(range(k)):
            layers += [_sn(nn.Conv2d(chans[i + 1], chans[i], 4, 2, 1), spectral_norm), nn.LeakyReLU(0.2)]
        layers += [nn.Flatten()]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
        layers.append(_sn(nn.Linear(chans[0] * sh * sw, 1), spectral_norm))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x).squeeze(1)
