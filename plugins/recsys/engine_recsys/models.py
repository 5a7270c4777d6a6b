"""Recommender models.

Every model takes ``x = [user, item_1, ..., item_c]`` rows (``LongTensor [batch, 1 + c]``) and
returns scores ``[batch, c]`` (the training batches of recsys data sources carry the positive
item first, then sampled negatives), and offers ``score_all(users) -> [batch, num_items]``
for full-ranking evaluation with matrix products instead of per-pair calls. Called with a 1-D
tensor of users, ``forward`` is ``score_all``.
"""

from __future__ import annotations

from itertools import pairwise
from typing import Annotated

import torch
from annotated_types import Ge, Gt, Lt
from torch import nn


def _split(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    if x.dim() != 2 or x.shape[1] < 2:
        raise ValueError(f"expected [batch, 1 + items] user/item ids, got shape {tuple(x.shape)}")
    return x[:, 0].long(), x[:, 1:].long()


class MF(nn.Module):
    """Matrix factorisation with biases: ``score(u, i) = <p_u, q_i> + b_u + b_i + b``.

    Args:
        num_users: number of users (from the data).
        num_items: number of items (from the data).
        factors: dimension of the user and item embeddings.
        biases: learn user, item and global biases.
        init_std: standard deviation of the initial embeddings.
    """

    def __init__(
        self, num_users: int, num_items: int, factors: int = 64, biases: bool = True, init_std: float = 0.1
    ) -> None:
        super().__init__()
        self.num_users, self.num_items = num_users, num_items
        self.user = nn.Embedding(num_users, factors)
        self.item = nn.Embedding(num_items, factors)
        nn.init.normal_(self.user.weight, std=init_std)
        nn.init.normal_(self.item.weight, std=init_std)
        self.biases = biases
        if biases:
            self.user_bias = nn.Embedding(num_users, 1)
            self.item_bias = nn.Embedding(num_items, 1)
            self.bias = nn.Parameter(torch.zeros(1))
            nn.init.zeros_(self.user_bias.weight)
            nn.init.zeros_(self.item_bias.weight)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 1:
            return self.score_all(x)
        users, items = _split(x)
        scores = torch.einsum("bd,bcd->bc", self.user(users), self.item(items))
        if self.biases:
            scores = scores + self.item_bias(items).squeeze(-1) + self.user_bias(users) + self.bias
        return scores

    def score_all(self, users: torch.Tensor) -> torch.Tensor:
        """Scores of every item for each user: ``[len(users), num_items]``."""
        scores = self.user(users) @ self.item.weight.T
        if self.biases:
            scores = scores + self.item_bias.weight.T + self.user_bias(users) + self.bias
        return scores

    def regularization(self, x: torch.Tensor) -> torch.Tensor:
        """Mean squared norm of the embeddings (and biases) a batch uses, for L2 regularisation."""
        users, items = _split(x)
        reg = self.user(users).pow(2).sum(-1).mean() + self.item(items).pow(2).sum(-1).mean(0).sum()
        if self.biases:
            reg = reg + self.item_bias(items).pow(2).sum(-1).mean(0).sum()
        return reg


class NeuMF(nn.Module):
    """Neural collaborative filtering (NeuMF): a GMF branch and an MLP branch, fused by a linear layer.

    Args:
        num_users: number of users (from the data).
        num_items: number of items (from the data).
        factors: embedding dimension of the GMF (generalised matrix factorisation) branch.
        mlp_layers: widths of the MLP branch; the first is the concatenated user+item embedding size.
        dropout: dropout after each MLP layer.
        score_chunk: users scored together by score_all (bounds memory: chunk x items x mlp_layers[1]).
    """

    def __init__(
        self,
        num_users: int,
        num_items: int,
        factors: Annotated[int, Ge(1)] = 32,
        mlp_layers: list[Annotated[int, Ge(1)]] = [64, 32, 16],  # noqa: B006 - read-only, shown by `engine components show`
        dropout: Annotated[float, Ge(0), Lt(1)] = 0.0,
        score_chunk: Annotated[int, Ge(1)] = 64,
    ) -> None:
        super().__init__()
        if len(mlp_layers) < 2 or mlp_layers[0] % 2:
            raise ValueError("mlp_layers needs at least two widths, the first even (user and item halves)")
        self.num_users, self.num_items, self.score_chunk = num_users, num_items, score_chunk
        half = mlp_layers[0] // 2
        self.gmf_user = nn.Embedding(num_users, factors)
        self.gmf_item = nn.Embedding(num_items, factors)
        self.mlp_user = nn.Embedding(num_users, half)
        self.mlp_item = nn.Embedding(num_items, half)
        for emb in (self.gmf_user, self.gmf_item, self.mlp_user, self.mlp_item):
            nn.init.normal_(emb.weight, std=0.1)
        self.first = nn.Linear(mlp_layers[0], mlp_layers[1])
        rest: list[nn.Module] = [nn.ReLU(), nn.Dropout(dropout)]
        for a, b in pairwise(mlp_layers[1:]):
            rest += [nn.Linear(a, b), nn.ReLU(), nn.Dropout(dropout)]
        self.rest = nn.Sequential(*rest)
        self.out = nn.Linear(factors + mlp_layers[-1], 1)
        self.half = half

    def _fuse(self, gmf: torch.Tensor, hidden: torch.Tensor) -> torch.Tensor:
        return self.out(torch.cat([gmf, self.rest(hidden)], -1)).squeeze(-1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 1:
            return self.score_all(x)
        users, items = _split(x)
        c = items.shape[1]
        gmf = self.gmf_user(users)[:, None, :] * self.gmf_item(items)
        mu = self.mlp_user(users)[:, None, :].expand(-1, c, -1)
        hidden = self.first(torch.cat([mu, self.mlp_item(items)], -1))
        return self._fuse(gmf, hidden)

    def score_all(self, users: torch.Tensor) -> torch.Tensor:
        """Scores of every item for each user, in chunks of users.

        The first MLP layer is split into a user part and an item part (computed once per user and
        once per item), and without autograd the chunks reuse preallocated buffers: allocating
        ``chunk x items x width`` tensors afresh dominates the time otherwise.
        """
        f = self.gmf_item.weight.shape[1]
        w_user, w_item = self.first.weight[:, : self.half], self.first.weight[:, self.half :]
        item_hidden = self.mlp_item.weight @ w_item.T  # [items, h1]
        w_gmf, w_mlp = self.out.weight[0, :f], self.out.weight[0, f:]
        fast = not torch.is_grad_enabled()
        buffers: dict[int, torch.Tensor] = {}

        def buffer(key: int, rows: int, cols: int, like: torch.Tensor) -> torch.Tensor:
            if key not in buffers or buffers[key].shape[0] < rows:
                buffers[key] = torch.empty(rows, cols, dtype=like.dtype, device=like.device)
            return buffers[key][:rows]

        out = []
        for s in range(0, len(users), self.score_chunk):
            u = users[s : s + self.score_chunk]
            gmf = (self.gmf_user(u) * w_gmf) @ self.gmf_item.weight.T  # [b, items]: w . (p_u * q_i)
            user_hidden = self.mlp_user(u) @ w_user.T + self.first.bias
            if not fast:
                hidden = user_hidden[:, None, :] + item_hidden[None]
                mlp = self.rest(hidden) @ w_mlp
            else:
                rows = len(u) * self.num_items
                h = buffer(0, rows, item_hidden.shape[1], item_hidden)
                torch.add(user_hidden[:, None, :], item_hidden[None], out=h.view(len(u), self.num_items, -1))
                for i, layer in enumerate(self.rest, start=1):
                    if isinstance(layer, nn.Linear):
                        h = torch.addmm(layer.bias, h, layer.weight.T, out=buffer(i, rows, layer.out_features, h))
                    elif isinstance(layer, nn.ReLU):
                        h = h.relu_()
                    else:
                        h = layer(h)
                mlp = (h @ w_mlp).view(len(u), -1)
            out.append(gmf + mlp + self.out.bias)
        return torch.cat(out) if out else torch.empty(0, self.num_items)


class _Tower(nn.Module):
    def __init__(self, n: int, feature_dim: int, embedding_dim: int, hidden: list[int], out_dim: int, dropout: float):
        super().__init__()
        self.embedding = nn.Embedding(n, embedding_dim)
        nn.init.normal_(self.embedding.weight, std=0.1)
        self.register_buffer("features", torch.zeros(n, feature_dim))
        layers: list[nn.Module] = []
        width = embedding_dim + feature_dim
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ReLU(), nn.Dropout(dropout)]
            width = h
        layers.append(nn.Linear(width, out_dim))
        self.mlp = nn.Sequential(*layers)

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.mlp(torch.cat([self.embedding(ids), self.features[ids]], -1))


class TwoTower(nn.Module):
    """Two-tower retrieval model: user and item towers (ID embedding + optional side features -> MLP), dot product.

    Side features, when the data has them (``user_feature_dim``/``item_feature_dim`` > 0 and
    ``use_features``), are copied into the model by the ranking task and saved in its
    checkpoints.

    Args:
        num_users: number of users (from the data).
        num_items: number of items (from the data).
        user_feature_dim: size of each user's side-feature vector (from the data; 0 for none).
        item_feature_dim: size of each item's side-feature vector (from the data; 0 for none).
        embedding_dim: dimension of the ID embeddings feeding each tower.
        hidden: hidden widths of each tower's MLP.
        out_dim: dimension of the user and item vectors compared by the dot product.
        use_features: feed the side features to the towers.
        normalize: L2-normalise the tower outputs (cosine similarity) and divide by temperature.
        temperature: scale of normalised scores (smaller: sharper).
        dropout: dropout inside the towers.
    """

    def __init__(
        self,
        num_users: int,
        num_items: int,
        user_feature_dim: int,
        item_feature_dim: int,
        embedding_dim: Annotated[int, Ge(1)] = 64,
        hidden: list[Annotated[int, Ge(1)]] = [128],  # noqa: B006 - read-only, shown by `engine components show`
        out_dim: Annotated[int, Ge(1)] = 64,
        use_features: bool = True,
        normalize: bool = True,
        temperature: Annotated[float, Gt(0)] = 0.1,
        dropout: Annotated[float, Ge(0), Lt(1)] = 0.0,
    ) -> None:
        super().__init__()
        self.num_users, self.num_items = num_users, num_items
        self.normalize, self.temperature = normalize, temperature
        ufd = user_feature_dim if use_features else 0
        ifd = item_feature_dim if use_features else 0
        self.user_tower = _Tower(num_users, ufd, embedding_dim, hidden, out_dim, dropout)
        self.item_tower = _Tower(num_items, ifd, embedding_dim, hidden, out_dim, dropout)

    def set_features(self, user_features: torch.Tensor | None, item_features: torch.Tensor | None) -> None:
        """Copy the data's side features into the towers (ignored when the towers take none)."""
        for tower, feats in ((self.user_tower, user_features), (self.item_tower, item_features)):
            if feats is not None and tower.features.shape[1] > 0:
                if tuple(feats.shape) != tuple(tower.features.shape):
                    from engine import ConfigError

                    raise ConfigError(
                        f"the data's side features have shape {tuple(feats.shape)}, the two-tower model "
                        f"expects {tuple(tower.features.shape)}",
                        hint="leave model.user_feature_dim / model.item_feature_dim unset: the data fills them",
                    )
                tower.features.copy_(feats.to(tower.features))

    def _vec(self, v: torch.Tensor) -> torch.Tensor:
        return nn.functional.normalize(v, dim=-1) if self.normalize else v

    def user_vectors(self, users: torch.Tensor) -> torch.Tensor:
        return self._vec(self.user_tower(users))

    def item_vectors(self, items: torch.Tensor | None = None) -> torch.Tensor:
        ids = torch.arange(self.num_items, device=self.item_tower.features.device) if items is None else items
        return self._vec(self.item_tower(ids))

    def _scale(self, s: torch.Tensor) -> torch.Tensor:
        return s / self.temperature if self.normalize else s

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 1:
            return self.score_all(x)
        users, items = _split(x)
        u = self.user_vectors(users)
        if items.numel() > self.num_items:  # cheaper to run the item tower once over every item
            i = self.item_vectors()[items]
        else:
            i = self.item_vectors(items.reshape(-1)).view(*items.shape, -1)
        return self._scale(torch.einsum("bd,bcd->bc", u, i))

    def score_all(self, users: torch.Tensor) -> torch.Tensor:
        """Scores of every item for each user: one pass of the item tower, one matrix product."""
        return self._scale(self.user_vectors(users) @ self.item_vectors().T)
