"""The ``rl.gym`` data source: a seeded, vectorised gymnasium environment as a LightningDataModule.

The data of an RL run is its environment. `GymEnvironment` builds a
``gymnasium.vector.SyncVectorEnv`` of ``num_envs`` copies (same-step autoreset,
so a finished episode's last observation is in ``info["final_obs"]``), records
raw episode returns with gymnasium's ``RecordEpisodeStatistics`` and, when asked,
normalises observations and scales rewards with gymnasium's own
``NormalizeObservation`` / ``NormalizeReward`` wrappers.

Its training dataloader is an *experience source*: an iterable that asks the
task being trained (``trainer.lightning_module.experience()``) for batches, so
rollouts are collected inside Lightning's training loop. Without a task (the
conformance kit, a quick look) it yields transitions of a uniformly random policy.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Annotated, Any

import gymnasium as gym
import lightning as L
import numpy as np
import torch
from annotated_types import Ge, Le
from torch.utils.data import DataLoader, IterableDataset

from engine import ConfigError
from engine_rl.spaces import space_facts


class ExperienceSource(IterableDataset):
    """An endless iterable over what ``generate()`` yields (one Lightning batch per item)."""

    def __init__(self, generate: Callable[[], Iterator[Any]]) -> None:
        super().__init__()
        self.generate = generate

    def __iter__(self) -> Iterator[Any]:
        return self.generate()


class GymEnvironment(L.LightningDataModule):
    """Any gymnasium environment, vectorised and seeded; the training dataloader streams experience.

    Facts: ``env_id``, ``observation_shape``, ``observation_discrete`` (n or None),
    ``action_discrete`` (n or None), ``action_shape``, ``action_low``/``action_high``,
    and the names models ask for: ``in_features``, ``num_actions``, ``action_dim``,
    ``num_states``, ``input_shape``.

    Args:
        env_id: a registered gymnasium id, e.g. CartPole-v1, FrozenLake-v1, Pendulum-v1.
        env_kwargs: keyword arguments for gymnasium.make (e.g. {is_slippery: true, map_name: 4x4}).
        num_envs: parallel copies stepped together (gymnasium.vector.SyncVectorEnv).
        seed: seed of the first reset (copy i gets seed + i) and of the action spaces (default: the run's seed).
        normalize_observation: standardise observations with running statistics (gymnasium NormalizeObservation).
        normalize_reward: scale rewards by the running std of the discounted return (gymnasium NormalizeReward).
        reward_gamma: discount used by reward scaling; match the task's gamma.
        random_batch_size: transitions per batch when no task drives the source (random policy).
    """

    def __init__(
        self,
        env_id: str = "CartPole-v1",
        env_kwargs: dict[str, Any] | None = None,
        num_envs: Annotated[int, Ge(1)] = 1,
        seed: Annotated[int, Ge(0), Le(4294967295)] | None = None,
        normalize_observation: bool = False,
        normalize_reward: bool = False,
        reward_gamma: float = 0.99,
        random_batch_size: Annotated[int, Ge(1)] = 32,
    ) -> None:
        super().__init__()
        if num_envs < 1:
            raise ConfigError(f"data.num_envs must be at least 1, got {num_envs}")
        if not 0.0 < reward_gamma <= 1.0:
            raise ConfigError(f"data.reward_gamma must be in (0, 1], got {reward_gamma}")
        self.env_id, self.env_kwargs = env_id, dict(env_kwargs or {})
        self.num_envs, self.seed = num_envs, 0 if seed is None else seed
        self.normalize_observation, self.normalize_reward = normalize_observation, normalize_reward
        self.reward_gamma, self.random_batch_size = reward_gamma, random_batch_size
        self._facts = space_facts(env_id, self.env_kwargs)
        if normalize_observation and self._facts["observation_discrete"] is not None:
            raise ConfigError(
                f"{env_id} has discrete observations: they cannot be normalised",
                hint="set data.normalize_observation=false",
            )
        self._facts.update(
            env_id=env_id,
            num_envs=num_envs,
            normalize_observation=normalize_observation,
            normalize_reward=normalize_reward,
        )
        self.env: gym.vector.VectorEnv | None = None
        self._obs_normalizers: list[Any] = []

    # ------------------------------------------------------------------ facts and splits

    @property
    def facts(self) -> dict[str, Any]:
        return dict(self._facts)

    def has_split(self, name: str) -> bool:
        """A training split, and a test split of one placeholder batch: the task's ``test_step`` plays
        greedy episodes at the end of the run (on the best checkpoint), so every run ends with its return."""
        return name in ("train", "test")

    # ------------------------------------------------------------------ environments

    def make_vector_env(self, num_envs: int | None = None, normalize: bool = True) -> gym.vector.VectorEnv:
        """A fresh vector env; ``normalize=False`` leaves out the normalisation wrappers (evaluation)."""
        n = num_envs or self.num_envs
        env_id, kwargs = self.env_id, self.env_kwargs
        norm_obs, norm_reward = normalize and self.normalize_observation, normalize and self.normalize_reward
        gamma = self.reward_gamma
        normalizers: list[Any] = []

        def make() -> gym.Env:
            # Per copy, as CleanRL does: gymnasium's *vector* normalisers do not support same-step autoreset.
            env: gym.Env = gym.wrappers.RecordEpisodeStatistics(gym.make(env_id, **kwargs))  # raw returns
            if norm_obs:
                env = gym.wrappers.NormalizeObservation(env)
                normalizers.append(env)
            if norm_reward:
                env = gym.wrappers.NormalizeReward(env, gamma=gamma)
            return env

        vec = gym.vector.SyncVectorEnv([make for _ in range(n)], autoreset_mode=gym.vector.AutoresetMode.SAME_STEP)
        if norm_obs:
            self._obs_normalizers = normalizers
        return vec

    def setup(self, stage: str) -> None:
        if stage == "fit" and self.env is None:
            self.env = self.make_vector_env()
            self.env.action_space.seed(self.seed)

    def teardown(self, stage: str) -> None:
        if stage == "fit" and self.env is not None:
            self.env.close()
            self.env = None

    def observation_stats(self) -> tuple[np.ndarray, np.ndarray] | None:
        """Running (mean, var) of the observation normalisers, pooled over the copies; None when raw."""
        if not self._obs_normalizers:
            return None
        stats = [w.obs_rms for w in self._obs_normalizers]
        counts = np.array([r.count for r in stats])
        means = np.stack([r.mean for r in stats])
        variances = np.stack([r.var for r in stats])
        w = (counts / counts.sum())[:, None]
        mean = (w * means).sum(0)
        var = (w * (variances + (means - mean) ** 2)).sum(0)
        return mean.astype(np.float64), var.astype(np.float64)

    # ------------------------------------------------------------------ experience

    def train_dataloader(self) -> DataLoader:
        return DataLoader(ExperienceSource(self._generate), batch_size=None, num_workers=0)

    def test_dataloader(self) -> DataLoader:
        """One placeholder batch: the test step plays its episodes itself (`RLTask.test_step`)."""
        return DataLoader([torch.zeros(1)], batch_size=None, num_workers=0)

    def _generate(self) -> Iterator[Any]:
        trainer = getattr(self, "trainer", None)
        task = getattr(trainer, "lightning_module", None) if trainer is not None else None
        if task is not None and hasattr(task, "experience"):
            return task.experience(self)
        return self._random_transitions()

    def _random_transitions(self) -> Iterator[tuple[torch.Tensor, ...]]:
        """``(obs, action, reward, next_obs, terminated)`` batches of a uniformly random policy."""
        if self.env is None:
            self.setup("fit")
        env = self.env
        assert env is not None
        obs, _ = env.reset(seed=self.seed)
        while True:
            rows: list[tuple[Any, ...]] = []
            while len(rows) < self.random_batch_size:
                action = env.action_space.sample()
                next_obs, reward, terminated, _truncated, info = env.step(action)
                final = next_obs.copy()
                if "final_obs" in info:
                    for i in np.nonzero(info["_final_obs"])[0]:
                        final[i] = info["final_obs"][i]
                for i in range(self.num_envs):
                    rows.append((obs[i], action[i], reward[i], final[i], terminated[i]))
                obs = next_obs
            rows = rows[: self.random_batch_size]
            yield tuple(torch.as_tensor(np.stack([r[k] for r in rows])) for k in range(5))
