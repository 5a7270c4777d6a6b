"""The adversarial losses of the GAN task: discriminator and generator losses, gradient and R1 penalties."""

from __future__ import annotations

from typing import Annotated

import torch
import torch.nn.functional as F
from annotated_types import Ge
from torch import nn

LOSSES = ("non_saturating", "hinge", "wgan_gp")


def discriminator_loss(
    discriminator: nn.Module,
    real: torch.Tensor,
    fake: torch.Tensor,
    loss_name: str,
    gp_weight: Annotated[float, Ge(0)] = 10.0,
    r1_weight: Annotated[float, Ge(0)] = 0.0,
) -> torch.Tensor:
    """The loss of ``discriminator`` on ``real`` and ``fake`` samples (model space), with its penalties."""
    if r1_weight > 0:
        real = real.detach().requires_grad_(True)
    d_real, d_fake = discriminator(real), discriminator(fake)
    if loss_name == "non_saturating":
        loss = F.softplus(-d_real).mean() + F.softplus(d_fake).mean()
    elif loss_name == "hinge":
        loss = F.relu(1 - d_real).mean() + F.relu(1 + d_fake).mean()
    else:
        loss = d_fake.mean() - d_real.mean() + gp_weight * gradient_penalty(discriminator, real.detach(), fake)
    if r1_weight > 0:
        (grad,) = torch.autograd.grad(d_real.sum(), real, create_graph=True)
        loss = loss + 0.5 * r1_weight * grad.flatten(1).pow(2).sum(1).mean()
    return loss


def gradient_penalty(discriminator: nn.Module, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
    """WGAN-GP: squared distance from 1 of the gradient norm of ``discriminator`` between real and fake."""
    alpha = torch.rand(len(real), *([1] * (real.dim() - 1)), device=real.device)
    mixed = (alpha * real + (1 - alpha) * fake).requires_grad_(True)
    (grad,) = torch.autograd.grad(discriminator(mixed).sum(), mixed, create_graph=True)
    return (grad.flatten(1).norm(2, dim=1) - 1).pow(2).mean()


def generator_loss(loss_name: str, d_fake: torch.Tensor) -> torch.Tensor:
    """The generator's loss given the discriminator's scores ``d_fake`` of its samples."""
    if loss_name == "non_saturating":
        return F.softplus(-d_fake).mean()
    return -d_fake.mean()  # hinge and WGAN: the generator maximises the critic's score
