"""The adversarial task: a GAN as a LightningModule with manual optimisation.

Any data source works: batches may be ``(x, y)`` pairs or bare ``x`` tensors
(labels are ignored); ``x`` must be real-valued. When the data's value range is
known (the ``preprocessing`` fact of image sources: ``value_range``, ``scale``,
``mean``, ``std``, or ``task.data_range``), real samples are mapped affinely onto
[-1, 1], the range of a ``tanh`` generator, and samples are mapped back before
they are measured or drawn, so a generator always produces data in the data
source's own normalisation.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, Literal

import lightning as L
import torch
from annotated_types import Ge, Le
from torch import nn

from engine import ConfigError, EngineError
from engine.data import sample_batch
from engine.tasks import eval_mode
from engine_gan.evaluation import data_bounds, load_classifier, measure_samples
from engine_gan.losses import LOSSES, discriminator_loss, generator_loss


class AdversarialTask(L.LightningModule):
    """Generative adversarial training of ``generator`` against ``discriminator``.

    Each training batch makes one discriminator step; every ``d_steps``-th batch
    also makes one generator step. At each validation (and test) epoch end,
    ``num_eval_samples`` samples are drawn with fixed noise (from the EMA
    generator when ``ema`` is on) and measured: ``modes``/``hq`` for Gaussian
    mixtures (data facts ``modes``, ``mode_std``), ``class_coverage``/``confidence``
    with ``classifier_run``, and ``mmd`` (kernel MMD² to the real split) always.
    ``val/score`` (higher is better) picks the best checkpoint. A NaN or infinite
    loss or weight stops the run with a message; the last good checkpoint stays.

    Args:
        loss: non_saturating (the standard GAN), hinge, or wgan_gp (Wasserstein loss with gradient penalty).
        d_steps: discriminator steps per generator step.
        gp_weight: weight of the gradient penalty (loss=wgan_gp).
        r1_weight: weight of the R1 penalty (squared gradient norm of D on real data; 0 turns it off).
        ema: keep an exponential moving average of the generator's weights, used for sampling and evaluation.
        ema_decay: decay of the moving average.
        num_eval_samples: samples drawn for the metrics at each validation and test (at least 1000).
        min_mode_samples: high-quality samples a mode needs to count as covered (per 2500 samples; scaled).
        classifier_run: run directory of a trained classifier (e.g. `engine run vision/digits`) for the
            class coverage / confidence score of generated images.
        data_range: [low, high] of the data values; default: from the data's preprocessing fact, else unbounded.
        eval_seed: seed of the fixed evaluation noise.
        input_shape: shape of one sample (from the data).
        preprocessing: the data's normalisation (from the data).
        modes: centres of the mixture's modes (from gan.gaussian_mixture).
        mode_std: standard deviation of each mode (from gan.gaussian_mixture).
    """

    def __init__(
        self,
        generator: nn.Module,
        discriminator: nn.Module,
        optimizer: Callable[..., torch.optim.Optimizer],
        d_optimizer: Callable[..., torch.optim.Optimizer],
        loss: Literal["non_saturating", "hinge", "wgan_gp"] = "non_saturating",
        d_steps: Annotated[int, Ge(1)] = 1,
        gp_weight: Annotated[float, Ge(0)] = 10.0,
        r1_weight: Annotated[float, Ge(0)] = 0.0,
        ema: bool = False,
        ema_decay: Annotated[float, Ge(0), Le(1)] = 0.999,
        num_eval_samples: Annotated[int, Ge(0)] = 2500,
        min_mode_samples: int = 20,
        classifier_run: str | None = None,
        data_range: list[float] | None = None,
        eval_seed: Annotated[int, Ge(0), Le(4294967295)] = 1234,
        input_shape: list[int] | None = None,
        preprocessing: dict[str, Any] | None = None,
        modes: list[list[float]] | None = None,
        mode_std: float | None = None,
    ) -> None:
        super().__init__()
        if loss not in LOSSES:
            raise ConfigError(f"task.loss must be one of {', '.join(LOSSES)}, got {loss!r}")
        if d_steps < 1:
            raise ConfigError(f"task.d_steps must be at least 1, got {d_steps}")
        if not 0.0 < ema_decay < 1.0:
            raise ConfigError(f"task.ema_decay must be in (0, 1), got {ema_decay}")
        if num_eval_samples < 1000:
            raise ConfigError(
                f"task.num_eval_samples must be at least 1000, got {num_eval_samples}",
                hint="sample metrics on fewer samples are too noisy to compare",
            )
        self.automatic_optimization = False
        self.generator, self.discriminator = generator, discriminator
        self.generator_ema = copy.deepcopy(generator).requires_grad_(False) if ema else None
        self.optimizer_factory, self.d_optimizer_factory = optimizer, d_optimizer
        self.loss_name, self.d_steps, self.gp_weight, self.r1_weight = loss, d_steps, gp_weight, r1_weight
        self.ema_decay, self.num_eval_samples, self.min_mode_samples = ema_decay, num_eval_samples, min_mode_samples
        self.classifier_run, self.eval_seed = classifier_run, eval_seed
        self.shape = list(input_shape) if input_shape is not None else None
        self.preprocessing = preprocessing
        self.modes, self.mode_std = modes, mode_std
        bounds = data_bounds(data_range, preprocessing, self.shape)
        self.bounded = bounds is not None
        lo, hi = bounds if bounds is not None else (torch.tensor(-1.0), torch.tensor(1.0))
        self.register_buffer("range_center", (lo + hi) / 2, persistent=False)
        self.register_buffer("range_half", (hi - lo) / 2, persistent=False)
        self._classifier: list[Any] = []  # (module, num_classes, remap); a list so it is not a submodule
        self._reals: list[torch.Tensor] = []
        self._ema_updates = 0

    # ------------------------------------------------------------------ data

    @staticmethod
    def _inputs(batch: Any) -> torch.Tensor:
        x = batch[0] if isinstance(batch, (list, tuple)) else batch
        if not isinstance(x, torch.Tensor):
            raise ConfigError(
                f"gan.adversarial needs tensor inputs, the data yields {type(x).__name__}",
                hint="use a data source whose items are (x, y) or x with x a float tensor",
            )
        return x

    def to_model_space(self, x: torch.Tensor) -> torch.Tensor:
        """Data values -> the generator's output space ([-1, 1] when the data range is known)."""
        return (x - self.range_center) / self.range_half if self.bounded else x

    def to_data_space(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.range_half + self.range_center if self.bounded else x

    def _generate(self, gen: nn.Module, z: torch.Tensor, like: torch.Tensor | None = None) -> torch.Tensor:
        out = gen(z)
        shape = self.shape if self.shape is not None else (list(like.shape[1:]) if like is not None else None)
        return out.view(len(z), *shape) if shape is not None else out

    def _latent_dim(self) -> int:
        dim = getattr(self.generator, "latent_dim", None)
        if not isinstance(dim, int):
            raise ConfigError(
                f"the generator {type(self.generator).__name__} has no integer 'latent_dim' attribute",
                hint="gan.adversarial generators expose latent_dim (the size of their noise input)",
            )
        return dim

    @property
    def primary_metric(self) -> tuple[str, str]:
        """GAN runs are judged by their sample score (``val/score``: mode coverage and quality, or classifier score)."""
        return ("score", "max")

    def check_data(self, datamodule: Any) -> None:
        """Before any compute: real-valued inputs, a generator whose samples fit them, a usable classifier."""
        try:
            batch = sample_batch(datamodule, 4)
        except EngineError:
            raise
        except Exception as exc:
            raise ConfigError(
                f"gan.adversarial cannot read a training batch of this data source: {type(exc).__name__}: {exc}",
                hint="the task needs items (x, y) or x with x a float tensor (images, feature vectors, points)",
            ) from exc
        if isinstance(batch, dict):
            raise ConfigError(
                f"gan.adversarial needs batches of (x, y) or x; the data yields a mapping with keys {sorted(batch)}",
                hint="choose a data source of real-valued inputs (images, feature vectors, points)",
            )
        x = self._inputs(batch)
        if not torch.is_floating_point(x):
            raise ConfigError(
                f"gan.adversarial generates real-valued inputs, but this data source yields {x.dtype} inputs "
                f"of shape {list(x.shape[1:])} (labels, ids or tokens cannot be generated by a GAN)",
                hint="choose a data source of images, feature vectors or points, e.g. data=gan.gaussian_mixture",
            )
        shape = list(x.shape[1:])
        if self.shape is not None and math.prod(self.shape) != math.prod(shape):
            raise ConfigError(f"the data's input_shape fact {self.shape} does not match its samples {shape}")
        dim = self._latent_dim()
        try:
            with eval_mode(self.generator, self.discriminator):
                fake = self.generator(torch.randn(2, dim))
                if math.prod(fake.shape[1:]) != math.prod(shape):
                    raise ConfigError(
                        f"the generator makes samples of shape {list(fake.shape[1:])}, the data's are {shape}",
                        hint="leave generator.in_features / generator.input_shape to the data",
                    )
                score = self.discriminator(self.to_model_space(x[:2]))
        except EngineError:
            raise
        except Exception as exc:
            raise ConfigError(
                f"the discriminator does not fit the data (samples of shape {shape}): {type(exc).__name__}: {exc}",
                hint="leave discriminator.in_features / discriminator.input_shape to the data",
            ) from exc
        if score.numel() != 2:
            raise ConfigError(f"the discriminator must return one score per sample, got shape {list(score.shape)}")
        if getattr(self.generator, "output", None) == "tanh" and not self.bounded and x.abs().max() > 1:
            raise ConfigError(
                f"the generator ends in tanh (values in [-1, 1]) but the data's values reach {x.abs().max():.3g} "
                "and their range is unknown",
                hint="set task.data_range=[low,high], or generator.output=linear",
            )
        if self.classifier_run is not None:
            self._load_classifier(shape)

    # ------------------------------------------------------------------ classifier

    def _load_classifier(self, shape: list[int] | None = None) -> tuple[nn.Module, int, Callable[..., Any]]:
        if not self._classifier:
            run = self.classifier_run
            self._classifier.append(load_classifier(run, self.preprocessing, shape or self.shape))  # type: ignore[arg-type]
        return self._classifier[0]

    # ------------------------------------------------------------------ losses

    def _d_loss(self, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        return discriminator_loss(self.discriminator, real, fake, self.loss_name, self.gp_weight, self.r1_weight)

    def _g_loss(self, d_fake: torch.Tensor) -> torch.Tensor:
        return generator_loss(self.loss_name, d_fake)

    # ------------------------------------------------------------------ divergence

    def _diverged(self, what: str) -> EngineError:
        root = Path(self.trainer.default_root_dir) if self._trainer is not None else None
        last = root / "checkpoints" / "last.ckpt" if root is not None else None
        kept = (
            f"the last good checkpoint is kept: {last}"
            if last is not None and last.is_file()
            else "no checkpoint had been saved yet"
        )
        return EngineError(
            f"training diverged at step {self.global_step} (epoch {self.current_epoch}): {what}; {kept}",
            hint="lower optimizer.lr / d_optimizer.lr, or try task.loss=wgan_gp or hinge, "
            "discriminator.spectral_norm=true",
        )

    def _check(self, value: torch.Tensor, name: str) -> None:
        if not torch.isfinite(value).all():
            raise self._diverged(f"the {name} is {value.detach().float().mean().item()}")

    def _check_weights(self, module: nn.Module, name: str) -> None:
        total = torch.stack([p.detach().float().sum() for p in module.parameters()]).sum()
        if not torch.isfinite(total):
            raise self._diverged(f"the {name}'s weights are not finite")

    # ------------------------------------------------------------------ training

    def training_step(self, batch: Any, batch_idx: int) -> None:
        real = self.to_model_space(self._inputs(batch).float())
        opt_g, opt_d = self.optimizers()  # type: ignore[misc]
        n, dim = len(real), self._latent_dim()

        with torch.no_grad():
            fake = self._generate(self.generator, torch.randn(n, dim, device=self.device), real)
        d_loss = self._d_loss(real, fake)
        self._check(d_loss, "discriminator loss")
        opt_d.zero_grad(set_to_none=True)
        self.manual_backward(d_loss)
        opt_d.step()
        self._check_weights(self.discriminator, "discriminator")
        self.log("train/d_loss", d_loss.detach(), prog_bar=True)

        if (batch_idx + 1) % self.d_steps == 0:
            self.discriminator.requires_grad_(False)
            fake = self._generate(self.generator, torch.randn(n, dim, device=self.device), real)
            g_loss = self._g_loss(self.discriminator(fake))
            self.discriminator.requires_grad_(True)
            self._check(g_loss, "generator loss")
            opt_g.zero_grad(set_to_none=True)
            self.manual_backward(g_loss)
            opt_g.step()
            self._check_weights(self.generator, "generator")
            self._update_ema()
            self.log("train/g_loss", g_loss.detach(), prog_bar=True)

    @torch.no_grad()
    def _update_ema(self) -> None:
        if self.generator_ema is None:
            return
        self._ema_updates += 1
        decay = min(self.ema_decay, (1 + self._ema_updates) / (10 + self._ema_updates))
        for pe, p in zip(self.generator_ema.parameters(), self.generator.parameters(), strict=True):
            pe.lerp_(p.detach(), 1 - decay)
        for be, b in zip(self.generator_ema.buffers(), self.generator.buffers(), strict=True):
            be.copy_(b)

    def configure_optimizers(self) -> Any:
        return [
            self.optimizer_factory(self.generator.parameters()),
            self.d_optimizer_factory(self.discriminator.parameters()),
        ]

    # ------------------------------------------------------------------ sampling and evaluation

    @torch.no_grad()
    def sample(self, n: int, seed: int | None = None, ema: bool = True) -> torch.Tensor:
        """``n`` samples in the data's own space (normalisation), from the EMA generator when there is one."""
        gen = self.generator_ema if ema and self.generator_ema is not None else self.generator
        g = torch.Generator().manual_seed(seed) if seed is not None else None
        z = torch.randn(n, self._latent_dim(), generator=g).to(self.device)
        was = gen.training
        gen.eval()
        try:
            out = torch.cat([self._generate(gen, chunk) for chunk in z.split(1024)])
        finally:
            gen.train(was)
        return self.to_data_space(out)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        """Latent noise -> samples in the data's space."""
        gen = self.generator_ema if self.generator_ema is not None else self.generator
        return self.to_data_space(self._generate(gen, z))

    def _collect(self, batch: Any) -> None:
        x = self._inputs(batch).float()
        have = sum(len(r) for r in self._reals)
        if have < self.num_eval_samples:
            self._reals.append(x[: self.num_eval_samples - have].detach())

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        self._collect(batch)

    def test_step(self, batch: Any, batch_idx: int) -> None:
        self._collect(batch)

    def on_validation_epoch_end(self) -> None:
        self._evaluate("val", self.eval_seed)

    def on_test_epoch_end(self) -> None:
        self._evaluate("test", self.eval_seed + 1)

    def measure(self, samples: torch.Tensor, reals: torch.Tensor | None = None) -> dict[str, float]:
        """The metrics of ``samples`` (data space): mixture modes/hq, classifier score, MMD to ``reals``."""
        return measure_samples(
            samples,
            reals,
            modes=self.modes,
            mode_std=self.mode_std,
            min_mode_samples=self.min_mode_samples,
            classifier=self._load_classifier if self.classifier_run is not None else None,
        )

    def _evaluate(self, split: str, seed: int) -> None:
        reals = torch.cat(self._reals) if self._reals else None
        self._reals = []
        samples = self.sample(self.num_eval_samples, seed=seed)
        if not torch.isfinite(samples).all():
            raise self._diverged("the generator's samples are not finite")
        for key, value in self.measure(samples, reals).items():
            self.log(f"{split}/{key}", value, prog_bar=key in ("score", "modes", "hq", "confidence"))
