"""RL models: an actor-critic MLP policy, a Q-network and a Q-table.

Each model's ``forward`` maps *raw* environment observations (a batch) to what a
deployed policy needs: action logits (discrete), the deterministic action
(continuous) or Q-values. Observation preprocessing lives inside the model, so
an exported artifact needs nothing else: discrete observations are one-hot
encoded, and the observation normaliser's statistics (when the data source
normalises) are kept in buffers the task copies from gymnasium's wrapper.
"""

from __future__ import annotations

from typing import Annotated, Literal

import torch
from annotated_types import Ge
from torch import nn
from torch.distributions import Categorical, Distribution, Independent, Normal

from engine import ConfigError

_ACTIVATIONS = {"tanh": nn.Tanh, "relu": nn.ReLU}


def _mlp(sizes: list[int], activation: str, out_gain: float | None = None) -> nn.Sequential:
    layers: list[nn.Module] = []
    for i in range(len(sizes) - 1):
        linear = nn.Linear(sizes[i], sizes[i + 1])
        last = i == len(sizes) - 2
        gain = (out_gain if out_gain is not None else 1.0) if last else 2**0.5
        nn.init.orthogonal_(linear.weight, gain)
        nn.init.zeros_(linear.bias)
        layers.append(linear)
        if not last:
            layers.append(_ACTIVATIONS[activation]())
    return nn.Sequential(*layers)


class ObservationEncoder(nn.Module):
    """Raw observations -> float features: one-hot for discrete spaces, else flatten and normalise."""

    def __init__(self, in_features: int, observation_discrete: int | None) -> None:
        super().__init__()
        self.in_features, self.discrete = in_features, observation_discrete
        self.register_buffer("obs_mean", torch.zeros(in_features))
        self.register_buffer("obs_var", torch.ones(in_features))
        self.register_buffer("obs_eps", torch.tensor(0.0))

    def set_stats(self, mean: torch.Tensor, var: torch.Tensor, eps: float = 1e-8) -> None:
        """Adopt the statistics of gymnasium's observation normaliser (raw inputs are then normalised)."""
        self.obs_mean.copy_(torch.as_tensor(mean, dtype=torch.float32).flatten())
        self.obs_var.copy_(torch.as_tensor(var, dtype=torch.float32).flatten())
        self.obs_eps.fill_(eps)

    def forward(self, obs: torch.Tensor, normalized: bool = False) -> torch.Tensor:
        if self.discrete is not None:
            return nn.functional.one_hot(obs.long().reshape(-1), self.discrete).float()
        x = obs.float().reshape(obs.shape[0], -1)
        if normalized:
            return x
        return (x - self.obs_mean) / torch.sqrt(self.obs_var + self.obs_eps)


class MLPPolicy(nn.Module):
    """Actor-critic MLP: a categorical head for discrete actions, a diagonal Gaussian head for continuous ones.

    ``forward(obs)`` returns action logits (discrete) or the deterministic action, the
    Gaussian mean clipped to the action bounds (continuous).

    Args:
        in_features: size of one flattened observation, or the number of discrete observations (from the data).
        num_actions: number of discrete actions, None for continuous actions (from the data).
        action_dim: size of a continuous action, None for discrete actions (from the data).
        observation_discrete: number of discrete observations (one-hot encoded), None for vectors (from the data).
        action_low: lower bounds of a continuous action (from the data).
        action_high: upper bounds of a continuous action (from the data).
        hidden: widths of the hidden layers of the actor and of the critic.
        activation: hidden activation, tanh or relu.
        log_std_init: initial log standard deviation of the Gaussian head (of each gSDE weight with use_sde).
        use_sde: generalized state-dependent exploration (gSDE, Raffin et al. 2021) for continuous actions: the
            exploration noise is the actor's last hidden features times a random matrix, resampled every
            sde_sample_freq steps, so it is smooth in time and scaled per state.
        sde_sample_freq: with use_sde, resample the noise matrix every this many rollout steps (-1: once per rollout).
    """

    def __init__(
        self,
        in_features: int,
        num_actions: int | None,
        action_dim: int | None,
        observation_discrete: int | None,
        action_low: list[float] | None,
        action_high: list[float] | None,
        hidden: list[Annotated[int, Ge(1)]] = [64, 64],  # noqa: B006 - read as a literal default by the engine
        activation: Literal["tanh", "relu"] = "tanh",
        log_std_init: float = 0.0,
        use_sde: bool = False,
        sde_sample_freq: int = -1,
    ) -> None:
        super().__init__()
        if (num_actions is None) == (action_dim is None):
            raise ConfigError("rl.mlp_policy needs exactly one of num_actions (discrete) and action_dim (continuous)")
        if activation not in _ACTIVATIONS:
            raise ConfigError(f"model.activation must be tanh or relu, got {activation!r}")
        self.encoder = ObservationEncoder(in_features, observation_discrete)
        self.discrete = num_actions is not None
        out = num_actions if num_actions is not None else int(action_dim)  # type: ignore[arg-type]
        self.actor = _mlp([in_features, *hidden, out], activation, out_gain=0.01)
        self.critic = _mlp([in_features, *hidden, 1], activation, out_gain=1.0)
        if use_sde and self.discrete:
            raise ConfigError(
                "policy.use_sde (state-dependent exploration) is for continuous actions; the actions are discrete",
                hint="set policy.use_sde=false",
            )
        if sde_sample_freq == 0 or sde_sample_freq < -1:
            raise ConfigError(
                f"policy.sde_sample_freq must be positive or -1 (once per rollout), got {sde_sample_freq}"
            )
        self.use_sde, self.sde_sample_freq = use_sde, sde_sample_freq
        self._noise: torch.Tensor | None = None  # gSDE exploration matrices, one per environment copy
        if not self.discrete:
            latent = hidden[-1] if hidden else in_features
            shape = (latent, out) if use_sde else (out,)
            self.log_std = nn.Parameter(torch.full(shape, float(log_std_init)))
            low = torch.tensor(action_low if action_low is not None else [-float("inf")] * out, dtype=torch.float32)
            high = torch.tensor(action_high if action_high is not None else [float("inf")] * out, dtype=torch.float32)
            self.register_buffer("action_low", low)
            self.register_buffer("action_high", high)

    def distribution(self, obs: torch.Tensor, normalized: bool = False) -> Distribution:
        """The action distribution at ``obs`` (training path: ``normalized=True`` skips the model's normaliser)."""
        if self.use_sde:
            latent, mean = self._latent_and_mean(obs, normalized)
            variance = (latent.detach() ** 2) @ (self.log_std.exp() ** 2)
            return Independent(Normal(mean, torch.sqrt(variance + 1e-6)), 1)
        out = self.actor(self.encoder(obs, normalized))
        if self.discrete:
            return Categorical(logits=out)
        return Independent(Normal(out, self.log_std.exp().expand_as(out)), 1)

    def _latent_and_mean(self, obs: torch.Tensor, normalized: bool) -> tuple[torch.Tensor, torch.Tensor]:
        latent = self.actor[:-1](self.encoder(obs, normalized))
        return latent, self.actor[-1](latent)

    def sample(self, obs: torch.Tensor, dist: Distribution, step: int, normalized: bool = False) -> torch.Tensor:
        """An exploratory action for each observation (rollouts; ``step`` counts the rollout's steps from 0).

        Without gSDE a sample of ``dist``; with gSDE ``mean + latent @ noise`` with one noise matrix per
        environment copy, resampled at step 0 and every ``sde_sample_freq`` steps (its law given the state is
        ``dist``, so the PPO ratio uses ``dist.log_prob``).
        """
        if not self.use_sde:
            return dist.sample()
        latent, mean = self._latent_and_mean(obs, normalized)
        n = latent.shape[0]
        freq = self.sde_sample_freq
        if self._noise is None or self._noise.shape[0] != n or step == 0 or (freq > 0 and step % freq == 0):
            std = self.log_std.detach().exp()
            self._noise = torch.randn((n, *std.shape), device=std.device) * std
        return mean + torch.bmm(latent.unsqueeze(1), self._noise).squeeze(1)

    def value(self, obs: torch.Tensor, normalized: bool = False) -> torch.Tensor:
        """State values, shape ``[batch]``."""
        return self.critic(self.encoder(obs, normalized)).squeeze(-1)

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        out = self.actor(self.encoder(obs))
        if self.discrete:
            return out
        return torch.maximum(torch.minimum(out, self.action_high), self.action_low)

    def act(self, obs: torch.Tensor) -> torch.Tensor:
        """Greedy (discrete) or deterministic (continuous) actions for raw observations."""
        out = self.forward(obs)
        return out.argmax(-1) if self.discrete else out


class QNetwork(nn.Module):
    """MLP from observations to one Q-value per discrete action (DQN).

    Args:
        in_features: size of one flattened observation, or the number of discrete observations (from the data).
        num_actions: number of discrete actions (from the data).
        observation_discrete: number of discrete observations (one-hot encoded), None for vectors (from the data).
        hidden: widths of the hidden layers.
        activation: hidden activation, relu or tanh.
    """

    def __init__(
        self,
        in_features: int,
        num_actions: int | None,
        observation_discrete: int | None,
        hidden: list[Annotated[int, Ge(1)]] = [128, 128],  # noqa: B006 - read as a literal default by the engine
        activation: Literal["relu", "tanh"] = "relu",
    ) -> None:
        super().__init__()
        if num_actions is None:
            raise ConfigError(
                "rl.q_network needs a discrete action space (the environment's actions are continuous)",
                hint="use task=rl.ppo (policy=rl.mlp_policy) for continuous actions",
            )
        if activation not in _ACTIVATIONS:
            raise ConfigError(f"model.activation must be relu or tanh, got {activation!r}")
        self.encoder = ObservationEncoder(in_features, observation_discrete)
        self.net = _mlp([in_features, *hidden, num_actions], activation, out_gain=1.0)
        self.discrete = True

    def q_values(self, obs: torch.Tensor, normalized: bool = False) -> torch.Tensor:
        return self.net(self.encoder(obs, normalized))

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.net(self.encoder(obs))

    def act(self, obs: torch.Tensor) -> torch.Tensor:
        return self.forward(obs).argmax(-1)


class QTable(nn.Module):
    """A table of Q-values, one row per discrete observation: ``forward(states) -> Q[states]``."""

    def __init__(self, num_states: int, num_actions: int, init: float = 0.0) -> None:
        super().__init__()
        self.table = nn.Parameter(torch.full((num_states, num_actions), float(init)))
        self.discrete = True

    def q_values(self, obs: torch.Tensor, normalized: bool = False) -> torch.Tensor:
        return self.table[obs.long().reshape(-1)]

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.table[obs.long().reshape(-1)]

    def act(self, obs: torch.Tensor) -> torch.Tensor:
        return self.forward(obs).argmax(-1)
