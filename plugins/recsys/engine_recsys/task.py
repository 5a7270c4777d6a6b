"""The ranking task: train on sampled negatives, evaluate by full ranking over all items."""

from __future__ import annotations

import inspect
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
from engine_recsys.sasrec import ScoresSequences


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

    Sequential models (``recsys.sasrec``: `ScoresSequences`) are handed each evaluated user's
    time-ordered history: the training items for validation users, the training items and the
    validation item for test users. In such a run, the EASE baseline and the fallback also score a
    test user from the training items and the validation item (the same information), and
    validation users from the training items.

    With a ``fallback`` model (e.g. ``recsys.ease`` with grids, fitted in closed form before
    training), each validation compares the model with the fallback on the validation users (NDCG
    at the smallest K) and the run's figures (``val/*``, then ``test/*`` at the best checkpoint) are
    those of the better one; ``val/model_ndcg@K`` and ``val/fallback_ndcg@K`` show both, ``test/model_*``
    the model's own test figures (reported, never used to choose), and
    ``val/fallback_chosen``/``test/fallback_chosen`` (1 or 0) which one the figures are. The choice
    is made on validation only; test is scored once, with the chosen one.

    Args:
        k: cut-offs K of the metrics.
        popularity_baseline: also rank by training popularity and report it (``pop_`` metrics).
        l2: L2 penalty on the embeddings a batch uses (models with a ``regularization`` method).
        ease_baseline: also rank with EASE fitted on the training interactions (``ease_`` metrics).
        ease_l2: EASE baseline's L2 weights to choose from on the validation users (NDCG at the smallest K).
        ease_max_items: skip the EASE baseline (with a note) above this many items: its fit takes
            items^2 memory and items^3 time.
        fallback: a model fitted in closed form that the run's figures come from whenever it beats
            the model on the validation users (slot ``fallback``; none by default).
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
        fallback: nn.Module | None = None,
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
            {f"{split}{p}": RankingMetrics(k) for split in ("val", "test") for p in ("", "_pop", "_ease", "_model")}
        )
        self.register_buffer("popularity", torch.zeros(0), persistent=False)
        self._eval_started = 0.0
        self.closed_form = isinstance(model, ClosedForm)
        self.automatic_optimization = not self.closed_form
        self.ease = EaseBaseline(ease_l2, ease_max_items) if ease_baseline else None
        self._source: Any = None
        self.sequential = isinstance(model, ScoresSequences)
        if fallback is not None and not isinstance(fallback, ClosedForm):
            raise ConfigError(
                f"fallback {type(fallback).__name__} is not fitted in closed form", hint="use fallback=recsys.ease"
            )
        self.fallback = fallback
        self.register_buffer("fallback_chosen", torch.zeros((), dtype=torch.bool))
        self._fallback_val: dict[str, torch.Tensor] = {}
        self._fallback_fit: dict[str, float] = {}

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
        for model in (self.model, self.fallback):
            if isinstance(model, ScoresFromHistory) and hasattr(source, "interaction_matrix"):
                model.set_interactions(source.interaction_matrix())
        if self.sequential and hasattr(self.model, "set_histories") and hasattr(source, "history"):
            self.model.set_histories(lambda users: source.history(users, "all"))

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

    def on_fit_start(self) -> None:
        """Fit the fallback (closed form, its settings chosen on validation) and score it on validation once."""
        if self.fallback is None or self._source is None:
            return
        val = self._source.datasets().get("val")
        check = (lambda: user_ndcg(val, self.fallback.score_all, min(self.ks), self.device)) if val else None
        fit = self.fallback.fit_closed_form
        kwargs = {"validate": check} if "validate" in inspect.signature(fit).parameters else {}
        self._fallback_fit = {f"train/fallback_{n}": float(v) for n, v in fit(self._interactions(), **kwargs).items()}
        if val:
            metric = RankingMetrics(self.ks)
            for start in range(0, len(val), 1024):
                users, (seen, target) = val.__getitems__(range(start, min(start + 1024, len(val))))
                metric.update(self.fallback.score_all(users.to(self.device)).cpu(), seen, target)
            self._fallback_val = metric.compute()

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
                if self.sequential:
                    self.model.score_sequences(x[:1])
                else:
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

    def _model_scores(self, users: torch.Tensor, split: str) -> torch.Tensor:
        """The model's scores (a sequential model's from the users' histories before ``split``'s held-out item)."""
        if self.sequential and self._source is not None and hasattr(self._source, "history"):
            return self.model.score_sequences(self._source.history(users.cpu(), split).to(self.device))
        return self.model.score_all(users)

    def _evaluate(self, batch: Any, split: str) -> None:
        users, (seen, target) = batch
        scores = self._model_scores(users, split)
        if self.fallback is not None and split == "test":  # the model's own figures too: test/model_*
            self.metrics["test_model"].update(scores, seen, target)
            if bool(self.fallback_chosen):
                scores = self.fallback.score_all(users)
        self.metrics[split].update(scores, seen, target)
        if self.popularity_baseline and self.popularity.numel() == scores.shape[1]:
            self.metrics[f"{split}_pop"].update(self.popularity.expand_as(scores), seen, target)
        if self.ease is not None and self.ease.weight is not None:
            history = seen if self.sequential else None  # a sequential run: what every model is given
            self.metrics[f"{split}_ease"].update(self.ease.scores(users, history), seen, target)

    def _finish(self, split: str) -> None:
        values = {f"{split}/{n}": v for n, v in self.metrics[split].compute().items()}
        if self.popularity_baseline and self.metrics[f"{split}_pop"].users > 0:
            values.update({f"{split}/pop_{n}": v for n, v in self.metrics[f"{split}_pop"].compute().items()})
        for name in ("ease", "model"):
            if self.metrics[f"{split}_{name}"].users > 0:
                values.update({f"{split}/{name}_{n}": v for n, v in self.metrics[f"{split}_{name}"].compute().items()})
        values[f"{split}/eval_time_s"] = torch.tensor(time.perf_counter() - self._eval_started)
        if self.fallback is not None:
            values.update(self._choose(split, values))
        main = f"{split}/ndcg@{min(self.ks)}"
        self.log(main, values.pop(main), prog_bar=True)
        self.log_dict(values, prog_bar=False)
        for key in (split, f"{split}_pop", f"{split}_ease", f"{split}_model"):
            self.metrics[key].reset()

    def _choose(self, split: str, values: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """Validation: keep the fallback's figures when it beats the model (NDCG at the smallest K)."""
        if split == "val" and self._fallback_val and not self.trainer.sanity_checking:  # a whole validation
            main = f"ndcg@{min(self.ks)}"
            model, fallback = values[f"val/{main}"], self._fallback_val[main].to(values[f"val/{main}"])
            self.fallback_chosen.fill_(bool(fallback > model))
            values.update({"val/model_" + main: model, "val/fallback_" + main: fallback})
            values.update({n: torch.tensor(v) for n, v in self._fallback_fit.items()})  # its settings (l2, ...)
            if self.fallback_chosen:
                values.update({f"val/{n}": v.to(model) for n, v in self._fallback_val.items()})
        return {f"{split}/fallback_chosen": self.fallback_chosen.float()}

    def on_test_model_eval(self) -> None:
        super().on_test_model_eval()
        if self.sequential and self.fallback is not None and hasattr(self._source, "seen_matrix"):
            self.fallback.set_interactions(self._source.seen_matrix("test"))  # as the sequential model sees

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
        chosen = self.fallback is not None and bool(self.fallback_chosen)
        scores = self.fallback.score_all(users) if chosen else self.model.score_all(users)
        if exclude is not None:
            scores = scores.masked_fill(exclude, float("-inf"))
        top = torch.topk(scores, min(k, scores.shape[1]), dim=1)
        return top.values, top.indices

    def configure_optimizers(self) -> Any:
        if self.closed_form:
            return ClosedFormFit(self.model, self._interactions, self._validator())
        from engine.tasks import configure_optimizers

        if self.fallback is not None:  # fitted in closed form: not the optimizer's
            self.fallback.requires_grad_(False)
        params = [p for p in self.parameters() if p.requires_grad] if self.fallback is not None else None
        return configure_optimizers(self, self.optimizer_factory, self.scheduler_factory, params)
