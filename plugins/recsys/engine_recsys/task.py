"""The ranking task: train on sampled negatives, evaluate by full ranking over all items."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Annotated, Any

import lightning as L
import torch
from annotated_types import Ge
from torch import nn

from engine import ConfigError
from engine.data import sample_batch
from engine.tasks import eval_mode
from engine_recsys.baselines import EaseBaseline
from engine_recsys.closed_form import ClosedForm, ClosedFormFit, ScoresFromHistory
from engine_recsys.metrics import RankingMetrics, user_ndcg


class RankingTask(L.LightningModule):
    """Implicit-feedback ranking: ``loss(model(x), weight)`` on ``[user, positive, negatives...]`` rows;
    full-ranking Recall@K, NDCG@K and HitRate@K over all items (items seen in training excluded)
    on val and test, with the popularity and EASE baselines beside each (``val/pop_recall@10``,
    ``val/ease_recall@10`` ...).

    Logs ``train/loss``; ``val/recall@K``, ``val/ndcg@K``, ``val/hit@K`` and their ``val/pop_*``
    and ``val/ease_*`` twins (the same for ``test/``), and ``val/eval_time_s``: the wall time of
    scoring all users.

    Models fitted in closed form (``recsys.ease``, ``recsys.als``: they have
    ``fit_closed_form``) are not trained by the optimizer: the first training step fits them from
    the training interactions (Lightning's manual optimization; the step is counted, so
    checkpoints are written as after any step), then the run validates and stops. The loss and
    optimizer slots are unused for them.

    Args:
        k: cut-offs K of the metrics.
        popularity_baseline: also rank by training popularity and report it (``pop_`` metrics).
        l2: L2 penalty on the embeddings a batch uses (models with a ``regularization`` method).
        ease_baseline: also rank with EASE fitted on the training interactions (``ease_`` metrics).
        ease_l2: EASE baseline's L2 weights to choose from on the validation users (NDCG at the smallest K).
        ease_max_items: skip the EASE baseline (with a note) above this many items: its fit takes
            items^2 memory and items^3 time.
    """

    def __init__(
        self,
        model: nn.Module,
        loss: nn.Module,
        optimizer: Callable[..., torch.optim.Optimizer],
        scheduler: Callable[..., Any] | None = None,
        k: list[int] = [10, 20],  # noqa: B006 - read-only, shown by `engine components show`
        popularity_baseline: bool = True,
        l2: Annotated[float, Ge(0)] = 0.0,
        ease_baseline: bool = True,
        ease_l2: list[float] = [10.0, 50.0, 200.0, 500.0, 1000.0, 3000.0],  # noqa: B006 - read-only
        ease_max_items: int = 10000,
    ) -> None:
        super().__init__()
        if not k or any((not isinstance(v, int)) or v < 1 for v in k):
            raise ConfigError(f"task.k must be a list of positive integers, got {k}", hint="e.g. task.k=[10,20]")
        if not callable(getattr(model, "score_all", None)):
            raise ConfigError(
                f"model {type(model).__name__} cannot score all items (no score_all(users) method)",
                hint="use a recsys model: recsys.mf, recsys.ncf or recsys.two_tower",
            )
        self.model, self.loss = model, loss
        self.optimizer_factory, self.scheduler_factory = optimizer, scheduler
        if ease_baseline and (not ease_l2 or any(v <= 0 for v in ease_l2)):
            raise ConfigError(f"task.ease_l2 must be a list of positive numbers, got {ease_l2}")
        self.ks, self.popularity_baseline, self.l2 = list(k), popularity_baseline, l2
        self.metrics = nn.ModuleDict(
            {f"{split}{p}": RankingMetrics(k) for split in ("val", "test") for p in ("", "_pop", "_ease")}
        )
        self.register_buffer("popularity", torch.zeros(0), persistent=False)
        self._eval_started = 0.0
        self.closed_form = isinstance(model, ClosedForm)
        self.automatic_optimization = not self.closed_form
        self.ease = EaseBaseline(ease_l2, ease_max_items) if ease_baseline else None
        self._source: Any = None

    # ------------------------------------------------------------------ data hand-over

    def setup(self, stage: str) -> None:
        """Take what the ranking needs from the data: training popularity, side features."""
        trainer = getattr(self, "_trainer", None)
        dm = getattr(trainer, "datamodule", None) if trainer is not None else None
        source = getattr(dm, "source", dm)
        self.attach_data(source)

    def attach_data(self, source: Any) -> None:
        """Take training popularity, side features and (for models scoring from them) interactions."""
        self._source = source
        pop = getattr(source, "item_popularity", None)
        if pop is not None:
            self.popularity = pop.float().to(self.device)
        set_features = getattr(self.model, "set_features", None)
        if callable(set_features):
            set_features(getattr(source, "user_features", None), getattr(source, "item_features", None))
        if isinstance(self.model, ScoresFromHistory) and hasattr(source, "interaction_matrix"):
            self.model.set_interactions(source.interaction_matrix())

    def _interactions(self) -> torch.Tensor:
        matrix = getattr(self._source, "interaction_matrix", None)
        if matrix is None:
            raise ConfigError(
                f"{type(self.model).__name__} is fitted from the training interactions, which this data "
                "source does not provide",
                hint="use a recsys data source (recsys.interactions, recsys.synthetic)",
            )
        return matrix()

    def _validator(self) -> Callable[[], torch.Tensor] | None:
        """Each validation user's NDCG at the smallest K under the model as it stands (for closed-form
        fits that choose their settings); None without validation users."""
        val = self._source.datasets().get("val") if self._source is not None else None
        if val is None or len(val) == 0:
            return None
        return lambda: user_ndcg(val, self.model.score_all, min(self.ks), self.device)

    @property
    def primary_metric(self) -> tuple[str, str]:
        """Ranking runs are judged by NDCG at the smallest cut-off (``task.k``)."""
        return (f"ndcg@{min(self.ks)}", "max")

    def check_data(self, datamodule: Any) -> None:
        """Score two training rows and one user before training: a mismatch becomes one clear error."""
        x, y = sample_batch(datamodule)
        try:
            with eval_mode(self.model):
                self.loss(self.model(x[:2]), y[:2])
                self.model.score_all(x[:1, 0])
        except Exception as exc:
            raise ConfigError(
                f"the model does not fit the data (training rows of shape {tuple(x.shape)}): "
                f"{type(exc).__name__}: {exc}",
                hint="use recsys models and losses with recsys data sources",
            ) from exc

    # ------------------------------------------------------------------ training

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)

    def training_step(self, batch: Any, batch_idx: int) -> torch.Tensor | None:
        if self.closed_form:
            return self._fit_closed_form()
        x, y = batch
        loss = self.loss(self.model(x), y)
        if self.l2 > 0:
            reg = getattr(self.model, "regularization", None)
            if reg is not None:
                loss = loss + self.l2 * reg(x)
        self.log("train/loss", loss, prog_bar=True)
        return loss

    def _fit_closed_form(self) -> None:
        """One step that fits the model (the optimizer's step runs ``fit_closed_form``), then stop."""
        opt = self.optimizers()
        opt.step()
        figures = opt.optimizer.figures if isinstance(opt.optimizer, ClosedFormFit) else {}
        self.log_dict({f"train/{n}": float(v) for n, v in figures.items()}, prog_bar=False)
        self.trainer.should_stop = True  # fitted: Lightning validates, then the run ends
        return None

    # ------------------------------------------------------------------ evaluation

    def _start(self) -> None:
        if self.ease is not None and self._source is not None:
            self.ease.fit(self._source, min(self.ks), self.device)  # once; not counted in eval_time_s
        self._eval_started = time.perf_counter()

    def _evaluate(self, batch: Any, split: str) -> None:
        users, (seen, target) = batch
        scores = self.model.score_all(users)
        self.metrics[split].update(scores, seen, target)
        if self.popularity_baseline and self.popularity.numel() == scores.shape[1]:
            self.metrics[f"{split}_pop"].update(self.popularity.expand_as(scores), seen, target)
        if self.ease is not None and self.ease.weight is not None:
            self.metrics[f"{split}_ease"].update(self.ease.scores(users), seen, target)

    def _finish(self, split: str) -> None:
        values = {f"{split}/{n}": v for n, v in self.metrics[split].compute().items()}
        if self.popularity_baseline and self.metrics[f"{split}_pop"].users > 0:
            values.update({f"{split}/pop_{n}": v for n, v in self.metrics[f"{split}_pop"].compute().items()})
        if self.metrics[f"{split}_ease"].users > 0:
            values.update({f"{split}/ease_{n}": v for n, v in self.metrics[f"{split}_ease"].compute().items()})
        values[f"{split}/eval_time_s"] = torch.tensor(time.perf_counter() - self._eval_started)
        main = f"{split}/ndcg@{min(self.ks)}"
        self.log(main, values.pop(main), prog_bar=True)
        self.log_dict(values, prog_bar=False)
        for key in (split, f"{split}_pop", f"{split}_ease"):
            self.metrics[key].reset()

    def on_validation_epoch_start(self) -> None:
        self._start()

    def validation_step(self, batch: Any, batch_idx: int) -> None:
        self._evaluate(batch, "val")

    def on_validation_epoch_end(self) -> None:
        self._finish("val")

    def on_test_epoch_start(self) -> None:
        self._start()

    def test_step(self, batch: Any, batch_idx: int) -> None:
        self._evaluate(batch, "test")

    def on_test_epoch_end(self) -> None:
        self._finish("test")

    def predict_step(self, batch: Any, batch_idx: int) -> dict[str, torch.Tensor]:
        """Top-K (largest K) items per user, seen items excluded: ``{"users", "items", "scores"}``."""
        users, (seen, _) = batch
        scores, items = self.recommend(users, max(self.ks), seen)
        return {"users": users, "items": items, "scores": scores}

    @torch.no_grad()
    def recommend(
        self, users: torch.Tensor, k: int, exclude: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """``(scores, items)`` of the top ``k`` items for each user, ``exclude`` (bool rows) left out."""
        scores = self.model.score_all(users)
        if exclude is not None:
            scores = scores.masked_fill(exclude, float("-inf"))
        top = torch.topk(scores, min(k, scores.shape[1]), dim=1)
        return top.values, top.indices

    def configure_optimizers(self) -> Any:
        if self.closed_form:
            return ClosedFormFit(self.model, self._interactions, self._validator())
        from engine.tasks import configure_optimizers

        return configure_optimizers(self, self.optimizer_factory, self.scheduler_factory)
