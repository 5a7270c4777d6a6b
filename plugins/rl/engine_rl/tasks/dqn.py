"""DQN and its replay buffer."""

from __future__ import annotations

import copy
import math
from collections import deque
from collections.abc import Callable, Iterator
from typing import Annotated, Any, Literal

import numpy as np
import torch
from annotated_types import Ge, Gt, Le
from torch import nn

from engine import ConfigError
from engine_rl.checks import check_task_fits
from engine_rl.tasks.common import RLTask, linear_schedule


class ReplayBuffer:
    """A circular buffer of transitions (numpy), sampled uniformly."""

    def __init__(self, capacity: int, obs_shape: tuple[int, ...], obs_dtype: Any, seed: int) -> None:
        self.capacity, self.size, self.pos = capacity, 0, 0
        self.obs = np.zeros((capacity, *obs_shape), dtype=obs_dtype)
        self.next_obs = np.zeros((capacity, *obs_shape), dtype=obs_dtype)
        self.action = np.zeros(capacity, dtype=np.int64)
        self.reward = np.zeros(capacity, dtype=np.float32)
        self.terminated = np.zeros(capacity, dtype=np.float32)
        self.steps = np.ones(capacity, dtype=np.float32)  # environment steps to the bootstrap observation (n-step)
        self.rng = np.random.default_rng(seed)

    def add(
        self,
        obs: np.ndarray,
        action: np.ndarray,
        reward: np.ndarray,
        next_obs: np.ndarray,
        term: np.ndarray,
        steps: np.ndarray | None = None,
    ) -> None:
        for i in range(len(obs)):
            p = self.pos
            self.obs[p], self.action[p], self.reward[p] = obs[i], action[i], reward[i]
            self.next_obs[p], self.terminated[p] = next_obs[i], term[i]
            self.steps[p] = 1 if steps is None else steps[i]
            self.pos = (p + 1) % self.capacity
            self.size = min(self.size + 1, self.capacity)

    _FIELDS = ("obs", "next_obs", "action", "reward", "terminated", "steps")

    def state_dict(self) -> dict[str, Any]:
        """The stored transitions (oldest first) as tensors: small enough for a checkpoint on classic-control tasks."""
        order = np.arange(self.size) if self.size < self.capacity else (np.arange(self.size) + self.pos) % self.capacity
        return {k: torch.from_numpy(getattr(self, k)[order].copy()) for k in self._FIELDS}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Refill from `state_dict` (keeping the newest transitions if this buffer is smaller)."""
        n = min(len(state["reward"]), self.capacity)
        for k in self._FIELDS:
            if k in state:  # checkpoints before n-step returns have no "steps": one-step transitions
                getattr(self, k)[:n] = np.asarray(state[k][len(state[k]) - n :])
        self.size, self.pos = n, n % self.capacity

    def sample(self, n: int) -> dict[str, torch.Tensor]:
        idx = self.rng.integers(0, self.size, n)
        return {
            "obs": torch.as_tensor(self.obs[idx]),
            "action": torch.as_tensor(self.action[idx]),
            "reward": torch.as_tensor(self.reward[idx]),
            "next_obs": torch.as_tensor(self.next_obs[idx]),
            "terminated": torch.as_tensor(self.terminated[idx]),
            "steps": torch.as_tensor(self.steps[idx]),
        }


class DQN(RLTask):
    """Deep Q-learning: replay buffer, target network, linear epsilon schedule, double DQN.

    Every ``train_frequency`` environment steps (per copy) it makes ``gradient_steps``
    optimizer steps on replayed minibatches; the target network copies the online one
    every ``target_update_interval`` environment steps (or tracks it with ``tau`` < 1).

    Args:
        q_network: the Q-network (rl.q_network), observations -> one value per action.
        optimizer: optimizer factory (from the optimizer section).
        scheduler: optional learning-rate scheduler factory (total_steps = optimizer steps of the run).
        action_discrete: discrete action count, None for continuous actions (from the data).
        total_env_steps: environment steps to train for (all parallel copies counted).
        buffer_size: transitions the replay buffer holds.
        batch_size: transitions per optimizer step.
        learning_starts: environment steps of random play before learning.
        train_frequency: environment steps (per copy) between training phases.
        gradient_steps: optimizer steps per training phase.
        gamma: discount factor.
        n_step: bootstrap n environment steps ahead: the reward is the discounted sum of the next n rewards (fewer
            at an episode's end), the target adds gamma**n times the value there (1: the usual one-step target).
        target_update_interval: environment steps between target-network updates.
        tau: target update rate (1.0 copies the online network).
        epsilon_start: exploration rate at the start.
        epsilon_end: exploration rate after the decay.
        exploration_fraction: fraction of total_env_steps over which epsilon decays linearly.
        double_dqn: choose the next action with the online network, value it with the target (double DQN).
        loss: TD loss, huber (smooth L1) or mse.
        save_replay_buffer: keep the replay buffer in checkpoints, so a resumed run continues with it.
        num_threads: torch CPU threads while training and evaluating (1 is fastest for small RL networks).
        eval_every: every this many optimizer steps, evaluate the greedy policy and log val/eval_return (None: never).
        eval_episodes: episodes per periodic evaluation (their env steps are logged as val/env_steps, not budgeted).
    """

    def __init__(
        self,
        q_network: nn.Module,
        optimizer: Callable[..., Any],
        scheduler: Any,
        action_discrete: int | None,
        total_env_steps: Annotated[int, Ge(1)] = 100_000,
        buffer_size: Annotated[int, Ge(1)] = 100_000,
        batch_size: int = 64,
        learning_starts: Annotated[int, Ge(0)] = 1_000,
        train_frequency: Annotated[int, Ge(1)] = 4,
        gradient_steps: Annotated[int, Ge(1)] = 1,
        gamma: Annotated[float, Ge(0), Le(1)] = 0.99,
        n_step: Annotated[int, Ge(1)] = 1,
        target_update_interval: Annotated[int, Ge(1)] = 500,
        tau: Annotated[float, Ge(0), Le(1)] = 1.0,
        epsilon_start: Annotated[float, Ge(0), Le(1)] = 1.0,
        epsilon_end: Annotated[float, Ge(0), Le(1)] = 0.05,
        exploration_fraction: Annotated[float, Gt(0), Le(1)] = 0.2,
        double_dqn: bool = True,
        loss: Literal["huber", "mse"] = "huber",
        save_replay_buffer: bool = True,
        num_threads: Annotated[int, Ge(1)] = 1,
        eval_every: int | None = None,
        eval_episodes: Annotated[int, Ge(1)] = 10,
    ) -> None:
        check_task_fits("rl.dqn", {"action_discrete": action_discrete})
        super().__init__(total_env_steps, optimizer, scheduler, num_threads, eval_every, eval_episodes)
        if not hasattr(q_network, "q_values"):
            raise ConfigError(
                f"task rl.dqn needs a Q-network (rl.q_network), got {type(q_network).__name__}",
                hint="set q_network=rl.q_network",
            )
        if loss not in ("huber", "mse"):
            raise ConfigError(f"task.loss must be huber or mse, got {loss!r}")
        self.model = q_network
        self.target = copy.deepcopy(q_network).requires_grad_(False)
        self.buffer_size, self.batch_size, self.learning_starts = buffer_size, batch_size, learning_starts
        self.train_frequency, self.gradient_steps, self.gamma = train_frequency, gradient_steps, gamma
        self.n_step = n_step
        self.target_update_interval, self.tau = target_update_interval, tau
        self.epsilon_start, self.epsilon_end, self.exploration_fraction = (
            epsilon_start,
            epsilon_end,
            exploration_fraction,
        )
        self.double_dqn, self.loss_name = double_dqn, loss
        self.save_replay_buffer = save_replay_buffer
        self.epsilon = epsilon_start
        self._last_target_update = 0
        self.buffer: ReplayBuffer | None = None
        self._restored_buffer: dict[str, Any] | None = None

    def experience(self, dm: Any) -> Iterator[dict[str, torch.Tensor]]:
        env = dm.env
        space = env.single_observation_space
        dtype = np.int64 if space.shape == () else np.float32
        buffer = self.buffer = ReplayBuffer(self.buffer_size, tuple(space.shape), dtype, dm.seed + 1 + self.env_steps)
        if self._restored_buffer is not None:  # resumed run: continue with the saved transitions
            buffer.load_state_dict(self._restored_buffer)
            self._restored_buffer = None
        rng = np.random.default_rng(dm.seed + 2 + self.env_steps)
        pending: list[deque[tuple[Any, Any, float]]] = [deque() for _ in range(dm.num_envs)]  # n-step windows
        obs, _ = env.reset(seed=dm.seed)
        calls = 0
        while self._budget_left():
            self.epsilon = linear_schedule(
                self.epsilon_start, self.epsilon_end, self.exploration_fraction, self.env_steps / self.total_env_steps
            )
            if self.env_steps < self.learning_starts:
                action = env.action_space.sample()
            else:
                with torch.no_grad():
                    greedy = self.model.q_values(self._obs_tensor(obs), normalized=True).argmax(-1).cpu().numpy()
                action = np.where(rng.random(dm.num_envs) < self.epsilon, env.action_space.sample(), greedy)
            next_obs, reward, terminated, truncated, info = env.step(action)
            self.env_steps += dm.num_envs
            calls += 1
            self._record(info)
            final = next_obs.copy()
            if "final_obs" in info:
                for i in np.nonzero(info["_final_obs"])[0]:
                    final[i] = info["final_obs"][i]
            if self.n_step == 1:
                buffer.add(obs, action, reward, final, terminated)
            else:
                self._add_n_step(buffer, pending, obs, action, reward, final, terminated, terminated | truncated)
            obs = next_obs
            if self.env_steps - self._last_target_update >= self.target_update_interval:
                self._update_target()
                self._last_target_update = self.env_steps
            if self.env_steps >= self.learning_starts and calls % self.train_frequency == 0:
                self._sync_observation_stats(dm)
                for _ in range(self.gradient_steps):
                    yield buffer.sample(self.batch_size)

    def _add_n_step(
        self, buffer: ReplayBuffer, pending: list[deque[tuple[Any, Any, float]]], obs: np.ndarray, *step: np.ndarray
    ) -> None:
        """Store each copy's transition from ``n_step`` steps ago (all its pending ones when its episode ended)."""
        action, reward, final, terminated, done = step
        for i, window in enumerate(pending):
            window.append((obs[i].copy(), action[i], float(reward[i])))
            while window and (done[i] or len(window) == self.n_step):
                k = len(window)
                ret = sum(self.gamma**j * r for j, (_, _, r) in enumerate(window))
                first, act, _ = window.popleft()
                buffer.add(first[None], [act], [ret], final[i : i + 1], [terminated[i]], [k])
                if not done[i]:
                    break

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_save_checkpoint(checkpoint)
        checkpoint["rl"]["last_target_update"] = self._last_target_update
        if self.save_replay_buffer and self.buffer is not None:
            checkpoint["rl"]["replay_buffer"] = self.buffer.state_dict()

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_load_checkpoint(checkpoint)
        state = checkpoint.get("rl", {})
        self._last_target_update = int(state.get("last_target_update", 0))
        self._restored_buffer = state.get("replay_buffer")

    @torch.no_grad()
    def _update_target(self) -> None:
        if self.tau >= 1.0:
            self.target.load_state_dict(self.model.state_dict())
            return
        for t, o in zip(self.target.parameters(), self.model.parameters(), strict=True):
            t.lerp_(o, self.tau)

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        q = self.model.q_values(batch["obs"], normalized=True)
        q = q.gather(1, batch["action"].long().view(-1, 1)).squeeze(1)
        with torch.no_grad():
            next_target = self.target.q_values(batch["next_obs"], normalized=True)
            if self.double_dqn:
                best = self.model.q_values(batch["next_obs"], normalized=True).argmax(1, keepdim=True)
                next_value = next_target.gather(1, best).squeeze(1)
            else:
                next_value = next_target.max(1).values
            discount = self.gamma ** batch["steps"] if self.n_step > 1 else self.gamma
            target = batch["reward"] + discount * (1.0 - batch["terminated"]) * next_value
        if self.loss_name == "huber":
            loss = nn.functional.smooth_l1_loss(q, target)
        else:
            loss = nn.functional.mse_loss(q, target)
        self._log_progress(loss, {"train/epsilon": self.epsilon, "train/q_mean": q.mean()})
        return loss

    def configure_optimizers(self) -> Any:
        updates = max(0, self.total_env_steps - self.learning_starts)
        per_copy = self.trainer.datamodule.num_envs if self._trainer is not None else 1
        total = math.ceil(updates / per_copy / self.train_frequency) * self.gradient_steps
        return self._optimizers(self.model.parameters(), total)
