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
from typing import Any, Literal

import lightning as L
import torch
import torch.nn.functional as F
from torch import nn

from engine.errors import ConfigError, EngineError
from engine_gan.metrics import ClassifierScore, ModeCoverage, classifier_probs, rbf_mmd

LOSSES = ("non_saturating", "hinge", "wgan_gp")


def _stats(pre: dict[str, Any] | None, shape: list[int] | None) -> tuple[torch.Tensor, torch.Tensor] | None:
    """``(mean, std)`` of a ``preprocessing`` fact, shaped to broadcast over one sample of ``shape``."""
    if not isinstance(pre, dict) or "mean" not in pre or "std" not in pre:
        return None
    mean = torch.as_tensor(pre["mean"], dtype=torch.float32).flatten()
    std = torch.as_tensor(pre["std"], dtype=torch.float32).flatten()
    if len(mean) != len(std):
        return None
    if len(mean) == 1:
        return mean.view(()), std.view(())
    if shape is not None and len(shape) == 3 and len(mean) == shape[0]:
        return mean.view(-1, 1, 1), std.view(-1, 1, 1)
    if shape is not None and math.prod(shape) == len(mean):
        return mean.view(*shape), std.view(*shape)
    return None


def data_bounds(
    data_range: list[float] | None, pre: dict[str, Any] | None, shape: list[int] | None
) -> tuple[torch.Tensor, torch.Tensor] | None:
    """``(low, high)`` of the data's values (per channel when normalised per channel), or None when unknown."""
    if data_range is not None:
        if len(data_range) != 2 or not data_range[0] < data_range[1]:
            raise ConfigError(f"task.data_range must be [low, high] with low < high, got {data_range}")
        return torch.tensor(float(data_range[0])), torch.tensor(float(data_range[1]))
    if not isinstance(pre, dict) or "value_range" not in pre:
        return None
    stats = _stats(pre, shape)
    if stats is None:
        return None
    mean, std = stats
    scale = float(pre.get("scale", 1.0))
    lo, hi = (float(v) * scale for v in pre["value_range"])
    return (lo - mean) / std, (hi - mean) / std


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
        d_steps: int = 1,
        gp_weight: float = 10.0,
        r1_weight: float = 0.0,
        ema: bool = False,
        ema_decay: float = 0.999,
        num_eval_samples: int = 2500,
        min_mode_samples: int = 20,
        classifier_run: str | None = None,
        data_range: list[float] | None = None,
        eval_seed: int = 1234,
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

    def check_data(self, datamodule: Any) -> None:
        """Before any compute: real-valued inputs, a generator whose samples fit them, a usable classifier."""
        try:
            if hasattr(datamodule, "splits"):
                collate = getattr(getattr(datamodule, "source", None), "collate_fn", None)
                loader = torch.utils.data.DataLoader(datamodule.splits["train"], batch_size=4, collate_fn=collate)
                batch = next(iter(loader))
            else:
                batch = next(iter(datamodule.train_dataloader()))
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
        was = (self.generator.training, self.discriminator.training)
        self.generator.eval()
        self.discriminator.eval()
        try:
            with torch.no_grad():
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
        finally:
            self.generator.train(was[0])
            self.discriminator.train(was[1])
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
        if self._classifier:
            return self._classifier[0]
        from engine.runs import open_run

        run = open_run(self.classifier_run)  # type: ignore[arg-type]
        num_classes = run.facts.get("num_classes")
        their_shape = run.facts.get("input_shape")
        shape = shape or self.shape
        if not isinstance(num_classes, int):
            raise ConfigError(f"task.classifier_run {run.path} is not a classification run (no num_classes fact)")
        if shape is not None and their_shape is not None and math.prod(their_shape) != math.prod(shape):
            raise ConfigError(
                f"task.classifier_run {run.path} classifies inputs of shape {their_shape}, the GAN makes {shape}",
                hint="train the classifier on the same data source",
            )
        module = run.task().requires_grad_(False).eval()
        ours, theirs = _stats(self.preprocessing, shape), _stats(run.facts.get("preprocessing"), their_shape)

        def remap(x: torch.Tensor) -> torch.Tensor:
            if their_shape is not None:
                x = x.reshape(len(x), *their_shape)
            if ours is None or theirs is None:
                return x
            raw = x * ours[1].to(x) + ours[0].to(x)  # the same images in the classifier's normalisation
            return (raw - theirs[0].to(x)) / theirs[1].to(x)

        self._classifier.append((module, num_classes, remap))
        return self._classifier[0]

    # ------------------------------------------------------------------ losses

    def _d_loss(self, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        if self.r1_weight > 0:
            real = real.detach().requires_grad_(True)
        d_real, d_fake = self.discriminator(real), self.discriminator(fake)
        if self.loss_name == "non_saturating":
            loss = F.softplus(-d_real).mean() + F.softplus(d_fake).mean()
        elif self.loss_name == "hinge":
            loss = F.relu(1 - d_real).mean() + F.relu(1 + d_fake).mean()
        else:
            loss = d_fake.mean() - d_real.mean() + self.gp_weight * self._gradient_penalty(real.detach(), fake)
        if self.r1_weight > 0:
            (grad,) = torch.autograd.grad(d_real.sum(), real, create_graph=True)
            loss = loss + 0.5 * self.r1_weight * grad.flatten(1).pow(2).sum(1).mean()
        return loss

    def _gradient_penalty(self, real: torch.Tensor, fake: torch.Tensor) -> torch.Tensor:
        alpha = torch.rand(len(real), *([1] * (real.dim() - 1)), device=real.device)
        mixed = (alpha * real + (1 - alpha) * fake).requires_grad_(True)
        (grad,) = torch.autograd.grad(self.discriminator(mixed).sum(), mixed, create_graph=True)
        return (grad.flatten(1).norm(2, dim=1) - 1).pow(2).mean()

    def _g_loss(self, d_fake: torch.Tensor) -> torch.Tensor:
        if self.loss_name == "non_saturating":
            return F.softplus(-d_fake).mean()
        return -d_fake.mean()  # hinge and WGAN: the generator maximises the critic's score

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
        out: dict[str, float] = {}
        score: float | None = None
        if self.modes is not None and self.mode_std is not None:
            min_samples = max(1, round(self.min_mode_samples * len(samples) / 2500))
            metric = ModeCoverage(self.modes, self.mode_std, min_samples=min_samples).to(samples.device)
            metric.update(samples)
            m = {k: float(v) for k, v in metric.compute().items()}
            out.update(modes=m["modes"], hq=m["hq"])
            score = m["hq"] * m["modes"] / m["num_modes"]
        if self.classifier_run is not None:
            module, num_classes, remap = self._load_classifier()
            module.to(samples.device)
            metric = ClassifierScore(num_classes).to(samples.device)
            metric.update(classifier_probs(module, remap(samples)))
            c = {k: float(v) for k, v in metric.compute().items()}
            out.update(c)
            class_score = c["confidence"] * c["class_coverage"] / num_classes
            score = class_score if score is None else score * class_score
        if reals is not None and len(reals):
            k = min(len(reals), len(samples), 2500)
            out["mmd"] = float(rbf_mmd(samples[:k], reals[:k]))
            # MMD orders runs without a quality metric, and breaks ties (say 0 modes everywhere) of those with one.
            score = (score or 0.0) - (1.0 if score is None else 1e-3) * out["mmd"]
        out["score"] = score if score is not None else 0.0
        return out

    def _evaluate(self, split: str, seed: int) -> None:
        reals = torch.cat(self._reals) if self._reals else None
        self._reals = []
        samples = self.sample(self.num_eval_samples, seed=seed)
        if not torch.isfinite(samples).all():
            raise self._diverged("the generator's samples are not finite")
        for key, value in self.measure(samples, reals).items():
            self.log(f"{split}/{key}", value, prog_bar=key in ("score", "modes", "hq", "confidence"))
