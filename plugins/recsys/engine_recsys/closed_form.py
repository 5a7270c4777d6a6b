"""Models fitted in closed form from the training interactions, not by gradient steps: EASE here,
implicit ALS in `engine_recsys.als`.

The ranking task recognises them by two protocols:

- `ClosedForm`: ``fit_closed_form(interactions)`` fits the model from the training
  interaction matrix. The task calls it in its one training step (see
  `engine_recsys.task.RankingTask`), then validates and stops. A model whose
  ``fit_closed_form`` also takes ``validate`` gets a function returning each validation user's NDCG at
  the smallest K under the model as it stands (None without validation users), to choose its settings by.
- `ScoresFromHistory`: the model scores a user from the items the user interacted with
  (EASE: ``x_u B``), so it is handed the training interactions whenever the task is attached to
  data (training, ``engine evaluate``, ``engine recommend``); they are not saved in checkpoints.

Interactions are a sparse CSR tensor ``[num_users, num_items]`` whose values are the interaction
weights (1 unless ``data.weighted=true``): `interaction_matrix` builds one.
"""

from __future__ import annotations

import inspect
import logging
import math
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Annotated, Any, Protocol, runtime_checkable

import torch
from annotated_types import Ge, Gt, Lt, MinLen
from torch import nn

from engine import ConfigError

log = logging.getLogger("engine.recsys")


@runtime_checkable
class ClosedForm(Protocol):
    """A model fitted from the interaction matrix in one call instead of by an optimizer."""

    def fit_closed_form(self, interactions: torch.Tensor) -> dict[str, float]:
        """Fit the parameters in place from the training interactions (sparse CSR ``[users, items]``,
        values the weights); return figures worth logging (``{"loss": ...}``, may be empty).
        May also take ``validate: Callable[[], torch.Tensor] | None`` (see the module's docstring)."""
        ...


@runtime_checkable
class ScoresFromHistory(Protocol):
    """A model whose scores for a user are computed from the user's interactions."""

    def set_interactions(self, interactions: torch.Tensor) -> None:
        """Keep the interactions (sparse CSR ``[users, items]``) that users are scored from."""
        ...


# --------------------------------------------------------------------------- sparse helpers


@contextmanager
def _quiet() -> Iterator[None]:
    """Without torch's "sparse CSR support is in beta" notes, said on every call: not the user's concern."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*[Ss]parse.*")
        yield


def interaction_matrix(
    users: torch.Tensor, items: torch.Tensor, weights: torch.Tensor | None, num_users: int, num_items: int
) -> torch.Tensor:
    """Sparse CSR ``[num_users, num_items]`` float32 matrix of interactions (repeated pairs summed)."""
    values = torch.ones(len(users)) if weights is None else weights.float()
    with _quiet():
        coo = torch.sparse_coo_tensor(
            torch.stack([users.long(), items.long()]), values, (num_users, num_items), check_invariants=False
        ).coalesce()
        return coo.to_sparse_csr()


def csr_parts(matrix: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(crow_indices, col_indices, values)`` of a sparse CSR tensor (``int64``, ``int64``, ``float32``)."""
    return matrix.crow_indices().long(), matrix.col_indices().long(), matrix.values().float()


def select_rows(
    indptr: torch.Tensor, indices: torch.Tensor, values: torch.Tensor, rows: torch.Tensor, num_cols: int
) -> torch.Tensor:
    """Rows ``rows`` of a CSR matrix given by its parts, as a new sparse CSR tensor (no Python loop)."""
    starts, ends = indptr[rows], indptr[rows + 1]
    lengths = ends - starts
    crow = torch.zeros(len(rows) + 1, dtype=torch.long, device=indptr.device)
    crow[1:] = torch.cumsum(lengths, 0)
    total = int(crow[-1])
    pos = torch.arange(total, device=indptr.device) - torch.repeat_interleave(crow[:-1] - starts, lengths)
    with _quiet():
        return torch.sparse_csr_tensor(crow, indices[pos], values[pos], (len(rows), num_cols), check_invariants=False)


def transpose(matrix: torch.Tensor) -> torch.Tensor:
    """The transpose of a sparse CSR matrix, as sparse CSR."""
    with _quiet():
        return matrix.t().to_sparse_coo().coalesce().to_sparse_csr()


def gram(interactions: torch.Tensor) -> torch.Tensor:
    """``X^T X`` (dense ``[items, items]``) of a sparse CSR interaction matrix ``X``."""
    with _quiet():
        x = interactions.to_sparse_coo().coalesce()
        g = torch.sparse.mm(x.t().coalesce(), x)
        return g.to_dense() if g.is_sparse else g


def sparse_rows_times(rows: torch.Tensor, dense: torch.Tensor) -> torch.Tensor:
    """``rows @ dense`` for sparse CSR ``rows`` (quietly)."""
    with _quiet():
        return rows @ dense


def ease_weights(g: torch.Tensor, l2: float, dropout: float = 0.0) -> torch.Tensor:
    """EASE's item-item weights (Steck 2019): ``B = I - P diagMat(1 / diag(P))`` with
    ``P = (G + Lambda)^-1``, i.e. ``B_ij = -P_ij / P_jj`` off the diagonal and ``B_ii = 0``.

    ``Lambda = l2 I`` (EASE), plus ``dropout / (1 - dropout) diag(G)`` with ``dropout > 0``: the
    emphasised-denoising regulariser of EDLAE (Steck 2020), each item's L2 weight growing with
    its training count. ``G + Lambda`` is symmetric positive definite: solved by Cholesky, in float64.
    """
    a = g.double().clone()
    a.diagonal().add_(l2 + dropout / (1.0 - dropout) * torch.diagonal(g).double())
    p = torch.cholesky_inverse(torch.linalg.cholesky(a))
    b = -p / torch.diagonal(p)[None, :]
    b.fill_diagonal_(0.0)
    return b.to(g.dtype if g.is_floating_point() else torch.float32)


# --------------------------------------------------------------------------- EASE


class EASE(nn.Module):
    """EASE (Steck 2019): a linear item-item model with a zero diagonal, fitted in closed form.

    Minimises ``||X - X B||^2 + ||Lambda^(1/2) B||^2`` subject to ``diag(B) = 0`` over the
    training interactions ``X``, with ``Lambda = l2 I`` (plus, with ``dropout > 0``, each item's
    training count times ``dropout / (1 - dropout)``: EDLAE's emphasised denoising, Steck 2020);
    a user's scores are ``x_u B`` (``x_u``: the user's training items).
    Fitted by the ranking task in one step (no optimizer, no epochs); the item-item weights are
    the model's parameters (saved in checkpoints), the users' interactions are handed to it by
    the task whenever it is attached to data.

    Memory and time grow with the square and cube of the item count: about ``3 x items^2``
    float64 values while fitting (2,000 items: 0.1 GB, under a second; 20,000 items: 10 GB).

    ``l2`` and ``dropout`` may be lists: the model is then fitted for every pair and keeps, by NDCG at
    the smallest K on the validation users, the best plain EASE (dropout 0, as the task's EASE baseline
    chooses its L2 weight) unless the best pair beats it by more than a standard error (`choose_pair`),
    logging ``train/l2`` and ``train/dropout``; without validation users, the first of each.

    Args:
        num_users: number of users (from the data).
        num_items: number of items (from the data).
        l2: L2 weight lambda on B (larger: smoother, more popularity-like scores); its best value
            grows with the interactions per item. A list: the values to choose from on validation.
        dropout: EDLAE's dropout probability p: adds ``p / (1 - p)`` times each item's count to its
            L2 weight (0: plain EASE), a part of the regularisation that scales with the data. A
            list: the values to choose from on validation.
    """

    def __init__(
        self,
        num_users: int,
        num_items: int,
        l2: Annotated[float, Gt(0)] | Annotated[list[Annotated[float, Gt(0)]], MinLen(1)] = 200.0,
        dropout: Annotated[float, Ge(0), Lt(1)] | Annotated[list[Annotated[float, Ge(0), Lt(1)]], MinLen(1)] = 0.0,
    ) -> None:
        super().__init__()
        self.l2_grid, self.dropout_grid = _grid("l2", l2), _grid("dropout", dropout)
        self.num_users, self.num_items = num_users, num_items
        self.l2, self.dropout = self.l2_grid[0], self.dropout_grid[0]
        self.weight = nn.Parameter(torch.zeros(num_items, num_items))
        self.register_buffer("history_indptr", torch.zeros(num_users + 1, dtype=torch.long), persistent=False)
        self.register_buffer("history_indices", torch.zeros(0, dtype=torch.long), persistent=False)
        self.register_buffer("history_values", torch.zeros(0), persistent=False)

    def set_interactions(self, interactions: torch.Tensor) -> None:
        """Keep the interactions users are scored from (not saved in checkpoints)."""
        if tuple(interactions.shape) != (self.num_users, self.num_items):
            raise ValueError(
                f"interactions of shape {tuple(interactions.shape)} for an EASE model of "
                f"{self.num_users} users and {self.num_items} items"
            )
        device = self.weight.device
        indptr, indices, values = csr_parts(interactions)
        self.history_indptr, self.history_indices = indptr.to(device), indices.to(device)
        self.history_values = values.to(device)

    @torch.no_grad()
    def fit_closed_form(
        self, interactions: torch.Tensor, validate: Callable[[], torch.Tensor] | None = None
    ) -> dict[str, float]:
        """Solve for B from the training interactions; keep them as the users' histories. With
        grids of ``l2``/``dropout`` and ``validate``, choose the pair on the validation users."""
        started = time.perf_counter()
        self.set_interactions(interactions)
        g = gram(interactions.cpu())
        pairs = [(a, p) for a in self.l2_grid for p in self.dropout_grid]
        if len(pairs) > 1 and validate is not None:
            per_user = {}
            for pair in pairs:
                self.weight.copy_(ease_weights(g, *pair).to(self.weight))
                per_user[pair] = validate()
            self.l2, self.dropout = choose_pair(per_user)
            log.info(f"EASE: l2={self.l2:g} dropout={self.dropout:g} chosen on validation from {len(pairs)} pairs")
        else:
            self.l2, self.dropout = pairs[0]
        self.weight.copy_(ease_weights(g, self.l2, self.dropout).to(self.weight))
        return {"fit_time_s": time.perf_counter() - started, "l2": self.l2, "dropout": self.dropout}

    def _history(self, users: torch.Tensor) -> torch.Tensor:
        return select_rows(self.history_indptr, self.history_indices, self.history_values, users.long(), self.num_items)

    def score_all(self, users: torch.Tensor) -> torch.Tensor:
        """Scores of every item for each user: ``x_u B`` (a sparse-dense product)."""
        return sparse_rows_times(self._history(users), self.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 1:
            return self.score_all(x)
        return self.score_all(x[:, 0]).gather(1, x[:, 1:].long())


def choose_pair(per_user: dict[tuple[float, float], torch.Tensor]) -> tuple[float, float]:
    """The ``(l2, dropout)`` pair to keep from each pair's per-user validation NDCG: the best plain EASE
    (dropout 0), unless the best pair beats it by more than one standard error of their paired
    difference (the one-standard-error rule: the simpler model unless the other is clearly better).
    Without a plain pair, the best one."""
    best = max(per_user, key=lambda p: float(per_user[p].mean()))
    plain = [p for p in per_user if p[1] == 0.0]
    if not plain or best[1] == 0.0:
        return best
    ref = max(plain, key=lambda p: float(per_user[p].mean()))
    diff = per_user[best] - per_user[ref]
    se = float(diff.std()) / math.sqrt(max(len(diff), 1)) if len(diff) > 1 else math.inf
    return best if float(diff.mean()) > se else ref


def _grid(name: str, value: float | list[float]) -> list[float]:
    values = [float(v) for v in value] if isinstance(value, (list, tuple)) else [float(value)]
    if not values:
        raise ConfigError(f"model.{name} is an empty list", hint=f"give a value or values to choose from: {name}=[...]")
    return values


class ClosedFormFit(torch.optim.Optimizer):
    """The ranking task's optimizer for a `ClosedForm` model: ``step()`` fits it.

    Lightning counts optimizer steps (``global_step``) and writes checkpoints after them, so the
    fit is one optimizer step: ``step()`` calls ``model.fit_closed_form(interactions())`` (with
    ``validate=`` for a model that takes it) and keeps what it returns in `figures`. The
    optimizer has no state.
    """

    def __init__(
        self,
        model: nn.Module,
        interactions: Callable[[], torch.Tensor],
        validate: Callable[[], torch.Tensor] | None = None,
    ) -> None:
        super().__init__(list(model.parameters()), {"lr": 0.0})  # no learning rate: 0 in the LR curves
        self.model, self.interactions, self.validate = model, interactions, validate
        self.figures: dict[str, float] = {}

    @torch.no_grad()
    def step(self, closure: Callable[[], Any] | None = None) -> None:  # type: ignore[override]
        if closure is not None:
            with torch.enable_grad():
                closure()
        fit = self.model.fit_closed_form  # type: ignore[operator]
        if "validate" in inspect.signature(fit).parameters:
            self.figures = dict(fit(self.interactions(), validate=self.validate))
        else:
            self.figures = dict(fit(self.interactions()))
