"""Environment ids, spaces and facts: gymnasium only (no torch), so configs can be checked before any compute."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from engine import ConfigError, did_you_mean


def check_env_id(env_id: str) -> None:
    """Raise a `ConfigError` with a did-you-mean when ``env_id`` is not registered in gymnasium."""
    if env_id in gym.registry:
        return
    ids = list(gym.registry)
    hint = did_you_mean(env_id, ids)
    if not hint:  # "cartpole" -> "CartPole-v1": compare without case and version
        base = env_id.lower().split("-v")[0]
        close = [i for i in ids if i.lower().split("-v")[0] == base]
        hint = (" — did you mean " + " or ".join(f"'{c}'" for c in close[:3]) + "?") if close else ""
    raise ConfigError(
        f"unknown gymnasium environment '{env_id}'{hint}",
        hint="see `engine rl envs` for the registered ids (third-party environments must be installed and imported)",
    )


def make_env(env_id: str, env_kwargs: dict[str, Any] | None = None) -> gym.Env:
    """``gymnasium.make`` with a clear error for a bad id or bad keyword arguments."""
    check_env_id(env_id)
    try:
        return gym.make(env_id, **(env_kwargs or {}))
    except gym.error.DependencyNotInstalled as exc:  # e.g. Box2D for LunarLander: one line, what to install
        raise ConfigError(
            f"gymnasium environment '{env_id}' needs a package that is not installed: {str(exc).splitlines()[0]}",
            hint="engine-rl declares box2d and pygame (LunarLander, BipedalWalker, CarRacing): "
            "`make setup` or `pip install -e plugins/rl`; other families: `pip install 'gymnasium[FAMILY]'`",
        ) from None
    except Exception as exc:
        raise ConfigError(
            f"cannot make gymnasium environment '{env_id}' with {env_kwargs or {}}: {type(exc).__name__}: {exc}",
            hint="check data.env_kwargs",
        ) from exc


def _space_facts(obs_space: gym.Space, act_space: gym.Space) -> dict[str, Any]:
    """The JSON-friendly facts describing an observation and an action space."""
    facts: dict[str, Any] = {}
    if isinstance(obs_space, gym.spaces.Discrete):
        n = int(obs_space.n)
        facts.update(observation_shape=[], observation_discrete=n, num_states=n, in_features=n, input_shape=[])
    elif isinstance(obs_space, gym.spaces.Box):
        shape = [int(s) for s in obs_space.shape]
        facts.update(
            observation_shape=shape,
            observation_discrete=None,
            num_states=None,
            in_features=int(np.prod(shape)) if shape else 1,
            input_shape=shape,
        )
    else:
        raise ConfigError(
            f"observation space {obs_space} is not supported",
            hint="rl.gym handles Discrete and Box observations; flatten others with a gymnasium wrapper",
        )
    if isinstance(act_space, gym.spaces.Discrete):
        n = int(act_space.n)
        facts.update(
            action_discrete=n, num_actions=n, action_shape=[], action_dim=None, action_low=None, action_high=None
        )
    elif isinstance(act_space, gym.spaces.Box):
        facts.update(
            action_discrete=None,
            num_actions=None,
            action_shape=[int(s) for s in act_space.shape],
            action_dim=int(np.prod(act_space.shape)),
            action_low=[float(v) for v in np.asarray(act_space.low).flatten()],
            action_high=[float(v) for v in np.asarray(act_space.high).flatten()],
        )
    else:
        raise ConfigError(
            f"action space {act_space} is not supported", hint="rl.gym handles Discrete and Box action spaces"
        )
    return facts


def space_facts(env_id: str, env_kwargs: dict[str, Any] | None = None) -> dict[str, Any]:
    """Facts of an environment id, read from one (closed) instance."""
    env = make_env(env_id, env_kwargs)
    try:
        return _space_facts(env.observation_space, env.action_space)
    finally:
        env.close()
