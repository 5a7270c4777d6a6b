"""Tabular Q-learning."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any

import numpy as np
import torch
from annotated_types import Ge, Gt, Le

from engine_rl.checks import check_task_fits
from engine_rl.tasks.common import RLTask, linear_schedule


class QLearning(RLTask):
    """Tabular Q-learning (discrete observations and actions); Lightning's SGD applies the TD update.

    The loss ``0.5 * sum (target - Q[s, a])^2`` over a batch of transitions makes one SGD
    step with learning rate alpha exactly the Q-learning update ``Q += alpha * (target - Q)``.
    ``task.model`` is the Q-table: ``model(states) -> Q-values``.

    Args:
        num_states: number of discrete observations (from the data).
        num_actions: number of discrete actions (from the data).
        observation_discrete: discrete observation count, None for continuous observations (from the data).
        action_discrete: discrete action count, None for continuous actions (from the data).
        total_env_steps: environment steps to train for (all parallel copies counted).
        learning_rate: step size alpha of the Q-update.
        gamma: discount factor.
        epsilon_start: exploration rate at the start.
        epsilon_end: exploration rate after the decay.
        exploration_fraction: fraction of total_env_steps over which epsilon decays linearly.
        q_init: initial Q-value of every state-action pair.
        num_threads: torch CPU threads while training and evaluating (1 is fastest for small RL networks).
        eval_every: every this many optimizer steps, evaluate the greedy policy and log val/eval_return (None: never).
        eval_episodes: episodes per periodic evaluation (their env steps are logged as val/env_steps, not budgeted).
    """

    def __init__(
        self,
        num_states: int | None,
        num_actions: int | None,
        observation_discrete: int | None,
        action_discrete: int | None,
        total_env_steps: Annotated[int, Ge(1)] = 200_000,
        learning_rate: Annotated[float, Gt(0)] = 0.1,
        gamma: Annotated[float, Ge(0), Le(1)] = 0.99,
        epsilon_start: Annotated[float, Ge(0), Le(1)] = 1.0,
        epsilon_end: Annotated[float, Ge(0), Le(1)] = 0.05,
        exploration_fraction: Annotated[float, Gt(0), Le(1)] = 0.5,
        q_init: float = 0.0,
        num_threads: Annotated[int, Ge(1)] = 1,
        eval_every: int | None = None,
        eval_episodes: Annotated[int, Ge(1)] = 10,
    ) -> None:
        check_task_fits(
            "rl.q_learning", {"observation_discrete": observation_discrete, "action_discrete": action_discrete}
        )
        super().__init__(total_env_steps, None, None, num_threads, eval_every, eval_episodes)
        from engine_rl.models import QTable

        self.model = QTable(int(num_states), int(num_actions), q_init)  # type: ignore[arg-type]
        self.learning_rate, self.gamma = learning_rate, gamma
        self.epsilon_start, self.epsilon_end, self.exploration_fraction = (
            epsilon_start,
            epsilon_end,
            exploration_fraction,
        )
        self.rng = np.random.default_rng()
        self.epsilon = epsilon_start

    def experience(self, dm: Any) -> Iterator[dict[str, torch.Tensor]]:
        env = dm.env
        self.rng = np.random.default_rng(dm.seed + 1)
        obs, _ = env.reset(seed=dm.seed)
        while self._budget_left():
            self.epsilon = linear_schedule(
                self.epsilon_start, self.epsilon_end, self.exploration_fraction, self.env_steps / self.total_env_steps
            )
            with torch.no_grad():
                greedy = self.model.act(self._obs_tensor(obs)).cpu().numpy()
            explore = self.rng.random(dm.num_envs) < self.epsilon
            action = np.where(explore, env.action_space.sample(), greedy)
            next_obs, reward, terminated, _truncated, info = env.step(action)
            self.env_steps += dm.num_envs
            self._record(info)
            final = next_obs.copy()
            if "final_obs" in info:
                for i in np.nonzero(info["_final_obs"])[0]:
                    final[i] = info["final_obs"][i]
            yield {
                "obs": torch.as_tensor(obs),
                "action": torch.as_tensor(action),
                "reward": torch.as_tensor(reward, dtype=torch.float32),
                "next_obs": torch.as_tensor(final),
                "terminated": torch.as_tensor(terminated, dtype=torch.float32),
            }
            obs = next_obs

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        q = self.model.q_values(batch["obs"]).gather(1, batch["action"].long().view(-1, 1)).squeeze(1)
        with torch.no_grad():
            best_next = self.model.q_values(batch["next_obs"]).max(1).values
            target = batch["reward"] + self.gamma * (1.0 - batch["terminated"]) * best_next
        loss = 0.5 * ((target - q) ** 2).sum()
        self._log_progress(loss, {"train/epsilon": self.epsilon})
        return loss

    def configure_optimizers(self) -> Any:
        return torch.optim.SGD(self.parameters(), lr=self.learning_rate)
