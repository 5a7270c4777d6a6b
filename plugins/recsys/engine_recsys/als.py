"""Implicit alternating least squares (Hu, Koren & Volinsky 2008), fitted in closed form on torch.

Every observed (user, item) pair is a preference ``p = 1`` with confidence ``c = 1 + alpha * w``
(``w``: the interaction weight, 1 unless ``data.weighted=true``); every other pair ``p = 0`` with
confidence 1. ALS minimises

    sum over all pairs of c (p - <x_u, y_i>)^2 + regularization (sum ||x_u||^2 + sum ||y_i||^2)

by solving for all user factors with the item factors fixed, then the reverse, ``iterations``
times. Each solve is exact: ``x_u = (Y^T Y + Y^T (C_u - I) Y + regularization I)^-1 Y^T C_u p_u``,
batched over users with the same number of items (a padded batched product, then a batched
Cholesky solve), so memory stays bounded (``budget`` padded entries at a time).
"""

from __future__ import annotations

import time
from typing import Annotated, Literal

import torch
from annotated_types import Ge, Gt
from torch import nn

from engine import ConfigError
from engine_recsys.closed_form import csr_parts, transpose

#: Padded (row, item) entries gathered at once per solve: bounds memory to ``budget x factors`` floats.
BUDGET = 1 << 18
#: Users (or items) solved together at most: bounds the batched ``factors x factors`` systems.
MAX_ROWS = 2048


def solve_side(
    indptr: torch.Tensor,
    indices: torch.Tensor,
    weights: torch.Tensor,
    other: torch.Tensor,
    regularization: float,
    alpha: float,
    budget: int = BUDGET,
) -> torch.Tensor:
    """The exact least-squares factors of every row of a CSR matrix given the other side's factors."""
    n, f = len(indptr) - 1, other.shape[1]
    yty = other.T @ other
    yty.diagonal().add_(regularization)
    out = torch.zeros(n, f, dtype=other.dtype, device=other.device)
    counts = indptr[1:] - indptr[:-1]
    order = torch.argsort(counts)  # rows of similar length together: little padding
    sorted_counts = counts[order].tolist()
    s = 0
    while s < n:
        longest = max(1, sorted_counts[min(n, s + MAX_ROWS) - 1])
        e = min(n, s + MAX_ROWS, s + max(1, budget // longest))
        rows, width = order[s:e], sorted_counts[e - 1]
        if width == 0:  # rows without interactions: b = 0, x = 0
            s = e
            continue
        starts, lengths = indptr[rows], counts[rows]
        offsets = torch.arange(width, device=indptr.device)
        mask = offsets[None, :] < lengths[:, None]
        pos = torch.where(mask, starts[:, None] + offsets[None, :], 0)
        y = other[indices[pos]]  # [rows, width, f]
        extra = alpha * weights[pos] * mask  # c - 1 on the row's items, 0 on padding
        a = torch.bmm((y * extra[..., None]).transpose(1, 2), y) + yty
        b = torch.bmm(((1.0 + extra) * mask)[:, None, :], y)[:, 0, :]
        x = torch.cholesky_solve(b.double()[..., None], torch.linalg.cholesky(a.double()))[..., 0]
        out[rows] = x.to(out.dtype)
        s = e
    return out


def objective(
    indptr: torch.Tensor,
    indices: torch.Tensor,
    weights: torch.Tensor,
    x: torch.Tensor,
    y: torch.Tensor,
    regularization: float,
    alpha: float,
    chunk: int = 1 << 20,
) -> float:
    """The ALS objective divided by the number of (user, item) pairs."""
    total = float(((x.T @ x) * (y.T @ y)).sum())  # every pair with p = 0, c = 1
    users = torch.repeat_interleave(torch.arange(len(indptr) - 1, device=indptr.device), indptr[1:] - indptr[:-1])
    for s in range(0, len(indices), chunk):
        u, i, w = users[s : s + chunk], indices[s : s + chunk], weights[s : s + chunk]
        pred = (x[u] * y[i]).sum(1)
        total += float(((1.0 + alpha * w) * (1.0 - pred) ** 2 - pred**2).sum())  # observed pairs instead
    total += regularization * float(x.pow(2).sum() + y.pow(2).sum())
    return total / max(1, x.shape[0] * y.shape[0])


class ALS(nn.Module):
    """Implicit ALS (weighted matrix factorisation with confidences, Hu et al. 2008), fitted in closed form.

    ``score(u, i) = <x_u, y_i>``. Observed pairs have confidence ``1 + alpha * weight``, every
    other pair confidence 1 and target 0. Fitted by the ranking task in one step (no optimizer):
    ``iterations`` alternating exact solves (batched Cholesky on torch), or the ``implicit``
    library's conjugate-gradient solver with ``backend=implicit`` (an optional install, same
    objective).

    Args:
        num_users: number of users (from the data).
        num_items: number of items (from the data).
        factors: dimension of the user and item factors.
        regularization: L2 weight on the factors (the defaults: the best on three synthetic sets, see
            docs/plugins/recsys.md; it matters most, sweep it on your data).
        alpha: confidence of an observed pair above an unobserved one (``c = 1 + alpha * weight``).
        iterations: alternating sweeps (users, then items).
        init_std: standard deviation of the initial factors.
        backend: torch (exact solves), or implicit (the ``implicit`` library, pip install implicit).
    """

    def __init__(
        self,
        num_users: int,
        num_items: int,
        factors: Annotated[int, Ge(1)] = 64,
        regularization: Annotated[float, Gt(0)] = 30.0,
        alpha: Annotated[float, Ge(0)] = 1.0,
        iterations: Annotated[int, Ge(1)] = 15,
        init_std: Annotated[float, Ge(0)] = 0.01,
        backend: Literal["torch", "implicit"] = "torch",
    ) -> None:
        super().__init__()
        if backend not in ("torch", "implicit"):
            raise ConfigError(f"unknown ALS backend '{backend}'", hint="choose torch or implicit")
        self.num_users, self.num_items = num_users, num_items
        self.regularization, self.alpha, self.iterations, self.backend = regularization, alpha, iterations, backend
        self.user = nn.Embedding(num_users, factors)
        self.item = nn.Embedding(num_items, factors)
        nn.init.normal_(self.user.weight, std=init_std)
        nn.init.normal_(self.item.weight, std=init_std)

    @torch.no_grad()
    def fit_closed_form(self, interactions: torch.Tensor) -> dict[str, float]:
        """Run the alternating solves from the current factors; return the final objective."""
        started = time.perf_counter()
        indptr, indices, weights = (t.to(self.item.weight.device) for t in csr_parts(interactions))
        if self.backend == "implicit":
            x, y = self._fit_implicit(indptr, indices, weights)
        else:
            # the transposed matrix: each item's users
            t_indptr, t_indices, t_weights = (t.to(indptr.device) for t in csr_parts(transpose(interactions)))
            y = self.item.weight.detach().clone()
            x = self.user.weight.detach().clone()
            for _ in range(self.iterations):
                x = solve_side(indptr, indices, weights, y, self.regularization, self.alpha)
                y = solve_side(t_indptr, t_indices, t_weights, x, self.regularization, self.alpha)
        self.user.weight.copy_(x)
        self.item.weight.copy_(y)
        loss = objective(indptr, indices, weights, x, y, self.regularization, self.alpha)
        return {"loss": loss, "fit_time_s": time.perf_counter() - started}

    def _fit_implicit(
        self, indptr: torch.Tensor, indices: torch.Tensor, weights: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        try:
            import scipy.sparse as sp
            from implicit.cpu.als import AlternatingLeastSquares
            from threadpoolctl import threadpool_limits
        except ImportError:
            raise ConfigError(
                "model.backend=implicit needs the implicit library", hint="pip install 'engine-recsys[implicit]'"
            ) from None
        # implicit's confidence is its alpha times the matrix's value: pass 1 + alpha * w with alpha 1
        conf = sp.csr_matrix(
            ((1.0 + self.alpha * weights).cpu().numpy(), indices.cpu().numpy(), indptr.cpu().numpy()),
            shape=(self.num_users, self.num_items),
        )
        with threadpool_limits(1, "blas"):  # implicit threads itself; BLAS threads inside would compete
            model = AlternatingLeastSquares(
                factors=self.user.weight.shape[1],
                regularization=self.regularization,
                alpha=1.0,
                iterations=self.iterations,
                random_state=int(torch.randint(2**31 - 1, (1,))),
            )
            model.fit(conf, show_progress=False)
        device = self.user.weight.device
        return (
            torch.as_tensor(model.user_factors, dtype=torch.float32, device=device),
            torch.as_tensor(model.item_factors, dtype=torch.float32, device=device),
        )

    def score_all(self, users: torch.Tensor) -> torch.Tensor:
        """Scores of every item for each user: one matrix product."""
        return self.user(users) @ self.item.weight.T

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 1:
            return self.score_all(x)
        users, items = x[:, 0].long(), x[:, 1:].long()
        return torch.einsum("bd,bcd->bc", self.user(users), self.item(items))
