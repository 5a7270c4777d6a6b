"""The GAN plugin: declarations only (no torch, numpy or Pillow imported here)."""

from __future__ import annotations

import argparse

from engine import CommandSink, Component, Recipe, hookimpl

ENGINE_API = ">=1,<2"


@hookimpl
def engine_tasks() -> list[Component]:
    return [
        Component(
            "adversarial",
            "engine_gan.task:AdversarialTask",
            "GAN training (manual optimisation): non-saturating, hinge or WGAN-GP losses, D steps per G step, EMA",
            slots={
                "generator": "model",
                "discriminator": "model",
                "optimizer": "optimizer",
                "d_optimizer": "optimizer",
            },
            defaults={
                "generator": "gan.mlp_generator",
                "discriminator": "gan.mlp_discriminator",
                "optimizer": "adam",
                "d_optimizer": "adam",
            },
            required_slots=("generator", "discriminator", "optimizer", "d_optimizer"),
            check="engine_gan.checks:adversarial",  # checkpoint.monitor: val/score (max) unless set
        )
    ]


@hookimpl
def engine_models() -> list[Component]:
    m = "engine_gan.models"
    return [
        Component("mlp_generator", f"{m}:MLPGenerator", "MLP generator: latent noise -> in_features values"),
        Component("mlp_discriminator", f"{m}:MLPDiscriminator", "MLP discriminator/critic on flattened inputs"),
        Component("dcgan_generator", f"{m}:DCGANGenerator", "DCGAN generator: transposed convs up to input_shape"),
        Component("dcgan_discriminator", f"{m}:DCGANDiscriminator", "DCGAN discriminator: strided convs, no BN"),
    ]


@hookimpl
def engine_data_sources() -> list[Component]:
    return [
        Component(
            "gaussian_mixture",
            "engine_gan.data:GaussianMixture",
            "2-D Gaussian mixtures: ring of 8 or grid of 25 modes (std 0.02), the mode-collapse benchmark",
            facts=("in_features", "input_shape", "num_classes", "modes", "mode_std"),
            task="gan.adversarial",
        )
    ]


@hookimpl
def engine_recipes() -> list[Recipe]:
    return [
        Recipe(
            "ring8",
            "engine_gan:recipes/ring8.yaml",
            "MLP GAN on the ring of 8 Gaussians: 8/8 modes, >= 90% high-quality samples",
            targets=("test/modes >= 8", "test/hq >= 0.9"),
        ),
        Recipe(
            "grid25",
            "engine_gan:recipes/grid25.yaml",
            "MLP GAN on the 5x5 grid of Gaussians, 300 epochs: 25/25 modes, >= 85% high-quality samples",
            targets=("test/modes >= 25", "test/hq >= 0.85"),
        ),
        Recipe(
            "digits",
            "engine_gan:recipes/digits.yaml",
            "DCGAN on 8x8 digits (needs engine-vision); set task.classifier_run=RUN for the classifier score",
            targets=("test/class_coverage >= 10", "test/confidence >= 0.9"),  # with task.classifier_run
        ),
    ]


@hookimpl
def engine_add_commands(subparsers: CommandSink) -> None:
    p = subparsers.add_parser(
        "sample",
        help="draw samples from a trained GAN run: an image grid or a 2-D scatter plot (PNG)",
        description="Sample a trained gan.adversarial run and write a PNG: a grid of images for image data "
        "(de-normalised with the data's preprocessing), or a scatter plot with the mixture's modes for 2-D data.",
        epilog="examples:\n  engine sample runs/ring8 --n 2000 --out ring.png\n"
        "  engine sample runs/digits --n 64 --out grid.png --seed 3",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("run", help="run directory of a gan.adversarial run")
    p.add_argument("--n", type=int, default=None, help="number of samples (default: 64 images, 2000 points)")
    p.add_argument("--out", default="samples.png", help="output PNG file (default: samples.png)")
    p.add_argument("--seed", type=int, default=0, help="seed of the latent noise (default: 0)")
    p.add_argument(
        "--checkpoint", choices=("best", "last"), default="best", help="which checkpoint to load (default: best)"
    )
    p.add_argument("--no-ema", action="store_true", help="sample the raw generator even when EMA weights exist")
    p.add_argument("--scale", type=int, default=None, help="pixels per image pixel in the grid (default: auto)")
    p.set_defaults(handler="engine_gan.cli:sample")
