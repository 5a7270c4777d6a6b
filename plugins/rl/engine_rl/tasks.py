"""RL tasks as LightningModules: tabular Q-learning, DQN and PPO.

Each task implements ``experience(datamodule)``, a generator the ``rl.gym`` data
source's training dataloader iterates: it steps the vectorised environment with
the current policy (no gradients) and yields training batches, so rollouts are
collected inside Lightning's training loop while Lightning does the optimisation
(``training_step`` returns the loss), gradient clipping, logging and checkpointing.
Training stops when ``total_env_steps`` environment steps have been taken.

Logged: ``train/loss``, ``train/episode_return`` (mean raw return of the last
100 finished training episodes), ``train/episode_length``, ``train/env_steps``,
``train/episodes`` and algorithm diagnostics. ``evaluate_run`` (used by
``engine evaluate``) plays the greedy / deterministic policy on fresh seeds.
"""

from __future__ import annotations

import copy
import math
from collections import deque
from collections.abc import Callable, Iterator
from typing import Any, Literal

import lightning as L
import numpy as np
import torch
from torch import nn

from engine.errors import ConfigError
from engine_rl.spaces import check_task_fits

#: Environments whose episodes succeed when their return is positive (goal reached).
_SUCCESS_ENVS = ("FrozenLake",)


def run_episodes(
    datamodule: Any, act: Callable[[torch.Tensor], torch.Tensor], episodes: int, seed: int, batch: int = 50
) -> dict[str, float]:
    """Play ``episodes`` episodes (episode i reset with seed ``seed + i``) with ``act``; return ``eval/*`` figures."""
    if episodes < 1:
        raise ConfigError(f"--episodes must be at least 1, got {episodes}")
    returns: list[float] = []
    lengths: list[int] = []
    n = min(batch, episodes)
    env = datamodule.make_vector_env(num_envs=n, normalize=False)
    try:
        for start in range(0, episodes, n):
            k = min(n, episodes - start)
            obs, _ = env.reset(seed=seed + start)
            ret, length = np.zeros(n), np.zeros(n, dtype=np.int64)
            done = np.zeros(n, dtype=bool)
            done[k:] = True  # copies beyond this batch's episodes are not counted
            while not done.all():
                with torch.no_grad():
                    action = act(torch.as_tensor(obs)).cpu().numpy()
                obs, reward, terminated, truncated, _ = env.step(action)
                ret += np.where(done, 0.0, reward)
                length += ~done
                done |= terminated | truncated
            returns.extend(ret[:k].tolist())
            lengths.extend(length[:k].tolist())
    finally:
        env.close()
    r = np.asarray(returns)
    out = {
        "eval/return_mean": float(r.mean()),
        "eval/return_std": float(r.std()),
        "eval/return_min": float(r.min()),
        "eval/return_max": float(r.max()),
        "eval/length_mean": float(np.mean(lengths)),
        "eval/episodes": float(len(r)),
    }
    if datamodule.env_id.startswith(_SUCCESS_ENVS):
        out["eval/success_rate"] = float((r > 0).mean())
    return out


def linear_schedule(start: float, end: float, fraction: float, progress: float) -> float:
    """``start`` moving linearly to ``end`` over the first ``fraction`` of training (``progress`` in [0, 1])."""
    if fraction <= 0:
        return end
    return start + (end - start) * min(1.0, progress / fraction)


class GreedyEvaluation(L.Callback):
    """Every ``every`` optimizer steps, play ``episodes`` greedy episodes and log ``val/eval_return``.

    Added by a task's ``configure_callbacks`` when ``task.eval_every`` is set. Lightning runs
    checkpoint callbacks after all others, so with ``checkpoint.every_n_train_steps`` equal to
    ``task.eval_every`` and ``checkpoint.monitor=val/eval_return`` the best checkpoint holds exactly
    the weights that were evaluated best. Each evaluation uses new episode seeds (1,000,000 + …,
    away from training and from ``engine evaluate``'s usual seeds); its environment steps are
    *not* part of ``task.total_env_steps`` and are logged separately as ``val/env_steps``.
    """

    def __init__(self, every: int, episodes: int) -> None:
        super().__init__()
        self.every, self.episodes = every, episodes

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
        if trainer.global_step % self.every or trainer.sanity_checking:
            return
        pl_module.evaluations += 1
        seed = 1_000_000 + pl_module.evaluations * self.episodes
        was_training = pl_module.training
        pl_module.eval()
        result = run_episodes(trainer.datamodule, pl_module.model.act, self.episodes, seed)
        pl_module.train(was_training)
        pl_module.eval_env_steps += int(result["eval/length_mean"] * result["eval/episodes"])
        logged = {
            "val/eval_return": result["eval/return_mean"],
            "val/eval_return_std": result["eval/return_std"],
            "val/env_steps": float(pl_module.eval_env_steps),
        }
        if "eval/success_rate" in result:
            logged["val/success_rate"] = result["eval/success_rate"]
        # straight to the loggers (one row per evaluation) and to the metrics checkpointing monitors
        for logger in trainer.loggers:
            logger.log_metrics(logged, step=trainer.global_step)
        trainer.callback_metrics.update({k: torch.tensor(v) for k, v in logged.items()})


class RLTask(L.LightningModule):
    """Shared machinery: the env-step budget, episode statistics, observation statistics, evaluation."""

    model: nn.Module

    def __init__(
        self,
        total_env_steps: int,
        optimizer: Callable[..., Any] | None,
        scheduler: Any,
        num_threads: int = 1,
        eval_every: int | None = None,
        eval_episodes: int = 10,
    ) -> None:
        super().__init__()
        self.num_threads = num_threads
        if total_env_steps < 1:
            raise ConfigError(f"task.total_env_steps must be positive, got {total_env_steps}")
        if eval_every is not None and eval_every < 1:
            raise ConfigError(f"task.eval_every must be a positive number of optimizer steps, got {eval_every}")
        if eval_episodes < 1:
            raise ConfigError(f"task.eval_episodes must be at least 1, got {eval_episodes}")
        self.eval_every, self.eval_episodes = eval_every, eval_episodes
        self.evaluations = 0
        self.eval_env_steps = 0
        self.total_env_steps = total_env_steps
        self.optimizer_factory, self.scheduler_factory = optimizer, scheduler
        self.env_steps = 0
        self.episodes = 0
        self.recent_returns: deque[float] = deque(maxlen=100)
        self.recent_lengths: deque[int] = deque(maxlen=100)

    # ---------------------------------------------------------------- bookkeeping

    def _record(self, info: dict[str, Any]) -> None:
        """Note finished episodes: raw returns from gymnasium's RecordEpisodeStatistics (in ``final_info``)."""
        final = info.get("final_info", info)
        if "episode" in final:
            for i in np.nonzero(final["_episode"])[0]:
                self.recent_returns.append(float(final["episode"]["r"][i]))
                self.recent_lengths.append(int(final["episode"]["l"][i]))
                self.episodes += 1

    def _sync_observation_stats(self, datamodule: Any) -> None:
        """Copy the normaliser's statistics into the model, so ``model(raw_obs)`` is self-contained."""
        stats = datamodule.observation_stats()
        if stats is not None:
            self.model.encoder.set_stats(torch.as_tensor(stats[0]), torch.as_tensor(stats[1]))

    def _budget_left(self) -> bool:
        if self.env_steps >= self.total_env_steps:
            if self._trainer is not None:
                self.trainer.should_stop = True
            return False
        return True

    def _log_progress(self, loss: torch.Tensor, extra: dict[str, Any] | None = None) -> None:
        """Log every ``trainer.log_every_n_steps`` steps (``self.log`` costs more than a tiny RL update)."""
        every = max(1, int(getattr(self.trainer, "log_every_n_steps", 50) or 1)) if self._trainer is not None else 1
        if self.global_step % every and self.env_steps < self.total_env_steps:
            return
        metrics: dict[str, Any] = {
            "train/loss": loss.detach(),
            "train/episode_return": float(np.mean(self.recent_returns)) if self.recent_returns else float("nan"),
            "train/env_steps": float(self.env_steps),
            "train/episodes": float(self.episodes),
        }
        if self.recent_lengths:
            metrics["train/episode_length"] = float(np.mean(self.recent_lengths))
        metrics.update({k: v.detach() if isinstance(v, torch.Tensor) else v for k, v in (extra or {}).items()})
        self.log_dict(metrics)

    def on_fit_start(self) -> None:
        torch.set_num_threads(self.num_threads)

    def configure_callbacks(self) -> list[L.Callback]:
        """The periodic greedy evaluation, when ``task.eval_every`` is set."""
        return [GreedyEvaluation(self.eval_every, self.eval_episodes)] if self.eval_every else []

    def _obs_tensor(self, obs: np.ndarray) -> torch.Tensor:
        return torch.as_tensor(obs, device=self.device)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint["rl"] = {
            "env_steps": self.env_steps,
            "episodes": self.episodes,
            "recent_returns": list(self.recent_returns),
            "recent_lengths": list(self.recent_lengths),
            "evaluations": self.evaluations,
            "eval_env_steps": self.eval_env_steps,
        }

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        state = checkpoint.get("rl", {})
        self.env_steps = int(state.get("env_steps", 0))
        self.episodes = int(state.get("episodes", 0))
        self.recent_returns.extend(state.get("recent_returns", []))
        self.recent_lengths.extend(state.get("recent_lengths", []))
        self.evaluations = int(state.get("evaluations", 0))
        self.eval_env_steps = int(state.get("eval_env_steps", 0))

    # ---------------------------------------------------------------- evaluation and deployment

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.model(obs)

    def evaluate_run(self, datamodule: Any, episodes: int = 100, seed: int = 0) -> dict[str, float]:
        """Greedy / deterministic policy on ``episodes`` fresh episodes (seeds ``seed`` … ``seed + episodes - 1``)."""
        self.eval()
        torch.set_num_threads(self.num_threads)
        return run_episodes(datamodule, self.model.act, episodes, seed)

    def _optimizers(self, params: Any, total_steps: int) -> Any:
        optimizer = self.optimizer_factory(params)  # type: ignore[misc]
        if self.scheduler_factory is None:
            return optimizer
        max_epochs = self.trainer.max_epochs if self._trainer is not None else 1
        scheduler = self.scheduler_factory(optimizer, total_steps=max(1, total_steps), max_epochs=max_epochs)
        if not isinstance(scheduler, dict):
            scheduler = {"scheduler": scheduler, "interval": "step"}
        return {"optimizer": optimizer, "lr_scheduler": scheduler}


# ==================================================================== tabular Q-learning


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
        total_env_steps: int = 200_000,
        learning_rate: float = 0.1,
        gamma: float = 0.99,
        epsilon_start: float = 1.0,
        epsilon_end: float = 0.05,
        exploration_fraction: float = 0.5,
        q_init: float = 0.0,
        num_threads: int = 1,
        eval_every: int | None = None,
        eval_episodes: int = 10,
    ) -> None:
        check_task_fits(
            "q_learning", {"observation_discrete": observation_discrete, "action_discrete": action_discrete}
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


# ==================================================================== DQN


class ReplayBuffer:
    """A circular buffer of transitions (numpy), sampled uniformly."""

    def __init__(self, capacity: int, obs_shape: tuple[int, ...], obs_dtype: Any, seed: int) -> None:
        self.capacity, self.size, self.pos = capacity, 0, 0
        self.obs = np.zeros((capacity, *obs_shape), dtype=obs_dtype)
        self.next_obs = np.zeros((capacity, *obs_shape), dtype=obs_dtype)
        self.action = np.zeros(capacity, dtype=np.int64)
        self.reward = np.zeros(capacity, dtype=np.float32)
        self.terminated = np.zeros(capacity, dtype=np.float32)
        self.rng = np.random.default_rng(seed)

    def add(
        self, obs: np.ndarray, action: np.ndarray, reward: np.ndarray, next_obs: np.ndarray, term: np.ndarray
    ) -> None:
        for i in range(len(obs)):
            p = self.pos
            self.obs[p], self.action[p], self.reward[p] = obs[i], action[i], reward[i]
            self.next_obs[p], self.terminated[p] = next_obs[i], term[i]
            self.pos = (p + 1) % self.capacity
            self.size = min(self.size + 1, self.capacity)

    _FIELDS = ("obs", "next_obs", "action", "reward", "terminated")

    def state_dict(self) -> dict[str, Any]:
        """The stored transitions (oldest first) as tensors: small enough for a checkpoint on classic-control tasks."""
        order = np.arange(self.size) if self.size < self.capacity else (np.arange(self.size) + self.pos) % self.capacity
        return {k: torch.from_numpy(getattr(self, k)[order].copy()) for k in self._FIELDS}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Refill from :meth:`state_dict` (keeping the newest transitions if this buffer is smaller)."""
        n = min(len(state["reward"]), self.capacity)
        for k in self._FIELDS:
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
        total_env_steps: int = 100_000,
        buffer_size: int = 100_000,
        batch_size: int = 64,
        learning_starts: int = 1_000,
        train_frequency: int = 4,
        gradient_steps: int = 1,
        gamma: float = 0.99,
        target_update_interval: int = 500,
        tau: float = 1.0,
        epsilon_start: float = 1.0,
        epsilon_end: float = 0.05,
        exploration_fraction: float = 0.2,
        double_dqn: bool = True,
        loss: Literal["huber", "mse"] = "huber",
        save_replay_buffer: bool = True,
        num_threads: int = 1,
        eval_every: int | None = None,
        eval_episodes: int = 10,
    ) -> None:
        check_task_fits("dqn", {"action_discrete": action_discrete})
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
            next_obs, reward, terminated, _truncated, info = env.step(action)
            self.env_steps += dm.num_envs
            calls += 1
            self._record(info)
            final = next_obs.copy()
            if "final_obs" in info:
                for i in np.nonzero(info["_final_obs"])[0]:
                    final[i] = info["final_obs"][i]
            buffer.add(obs, action, reward, final, terminated)
            obs = next_obs
            if self.env_steps - self._last_target_update >= self.target_update_interval:
                self._update_target()
                self._last_target_update = self.env_steps
            if self.env_steps >= self.learning_starts and calls % self.train_frequency == 0:
                self._sync_observation_stats(dm)
                for _ in range(self.gradient_steps):
                    yield buffer.sample(self.batch_size)

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
            target = batch["reward"] + self.gamma * (1.0 - batch["terminated"]) * next_value
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


# ==================================================================== PPO


class PPO(RLTask):
    """Proximal policy optimisation: clipped objective, GAE, entropy bonus; discrete and continuous actions.

    Each rollout takes ``rollout_steps`` steps in every environment copy, then yields
    ``update_epochs`` shuffled passes of minibatches; a truncated episode (time limit)
    bootstraps from the value of its final observation.

    Args:
        policy: the actor-critic (rl.mlp_policy).
        optimizer: optimizer factory (from the optimizer section).
        scheduler: optional learning-rate scheduler factory (total_steps = optimizer steps of the run).
        total_env_steps: environment steps to train for (all parallel copies counted).
        rollout_steps: steps per environment copy in each rollout.
        minibatch_size: transitions per optimizer step.
        update_epochs: passes over each rollout.
        gamma: discount factor.
        gae_lambda: GAE lambda (bias/variance trade-off of the advantage).
        clip_coef: PPO clipping range of the probability ratio.
        clip_value: also clip the value update to clip_coef around the old values.
        ent_coef: weight of the entropy bonus.
        vf_coef: weight of the value loss.
        normalize_advantages: standardise advantages in each minibatch.
        target_kl: stop a rollout's updates early once the approximate KL exceeds it (None: never).
        num_threads: torch CPU threads while training and evaluating (1 is fastest for small RL networks).
        eval_every: every this many optimizer steps, evaluate the greedy policy and log val/eval_return (None: never).
        eval_episodes: episodes per periodic evaluation (their env steps are logged as val/env_steps, not budgeted).
    """

    def __init__(
        self,
        policy: nn.Module,
        optimizer: Callable[..., Any],
        scheduler: Any,
        total_env_steps: int = 100_000,
        rollout_steps: int = 128,
        minibatch_size: int = 64,
        update_epochs: int = 4,
        gamma: float = 0.99,
        gae_lambda: float = 0.95,
        clip_coef: float = 0.2,
        clip_value: bool = False,
        ent_coef: float = 0.0,
        vf_coef: float = 0.5,
        normalize_advantages: bool = True,
        target_kl: float | None = None,
        num_threads: int = 1,
        eval_every: int | None = None,
        eval_episodes: int = 10,
    ) -> None:
        super().__init__(total_env_steps, optimizer, scheduler, num_threads, eval_every, eval_episodes)
        if not hasattr(policy, "distribution") or not hasattr(policy, "value"):
            raise ConfigError(
                f"task rl.ppo needs an actor-critic policy (rl.mlp_policy), got {type(policy).__name__}",
                hint="set policy=rl.mlp_policy",
            )
        self.model = policy
        self.rollout_steps, self.minibatch_size, self.update_epochs = rollout_steps, minibatch_size, update_epochs
        self.gamma, self.gae_lambda, self.clip_coef, self.clip_value = gamma, gae_lambda, clip_coef, clip_value
        self.ent_coef, self.vf_coef = ent_coef, vf_coef
        self.normalize_advantages, self.target_kl = normalize_advantages, target_kl
        self._stop_updates = False

    @torch.no_grad()
    def _rollout(self, dm: Any, env: Any, obs: np.ndarray) -> tuple[dict[str, torch.Tensor], np.ndarray]:
        n, T = dm.num_envs, self.rollout_steps
        obs_buf, act_buf, logp_buf, val_buf, rew_buf, done_buf = [], [], [], [], [], []
        policy = self.model
        for t in range(T):
            o = self._obs_tensor(obs)
            dist = policy.distribution(o, normalized=True)
            action = policy.sample(o, dist, t, normalized=True) if hasattr(policy, "sample") else dist.sample()
            value = policy.value(o, normalized=True)
            a = action.cpu().numpy()
            if not policy.discrete:
                a = np.clip(a, env.single_action_space.low, env.single_action_space.high)
            next_obs, reward, terminated, truncated, info = env.step(a)
            self.env_steps += n
            self._record(info)
            reward = np.asarray(reward, dtype=np.float32).copy()
            cut = truncated & ~terminated
            if cut.any():  # time limit: bootstrap from the value of the final observation
                final = np.stack([info["final_obs"][i] for i in np.nonzero(cut)[0]])
                reward[cut] += self.gamma * policy.value(self._obs_tensor(final), normalized=True).cpu().numpy()
            obs_buf.append(o)
            act_buf.append(action)
            logp_buf.append(dist.log_prob(action))
            val_buf.append(value)
            rew_buf.append(torch.as_tensor(reward, device=self.device))
            done_buf.append(torch.as_tensor(terminated | truncated, dtype=torch.float32, device=self.device))
            obs = next_obs
        last_value = policy.value(self._obs_tensor(obs), normalized=True)
        values, rewards, dones = torch.stack(val_buf), torch.stack(rew_buf), torch.stack(done_buf)
        advantages = torch.zeros_like(rewards)
        gae = torch.zeros(n, device=self.device)
        for t in reversed(range(T)):
            next_value = last_value if t == T - 1 else values[t + 1]
            nonterminal = 1.0 - dones[t]
            delta = rewards[t] + self.gamma * next_value * nonterminal - values[t]
            gae = delta + self.gamma * self.gae_lambda * nonterminal * gae
            advantages[t] = gae
        data = {
            "obs": torch.stack(obs_buf).flatten(0, 1),
            "action": torch.stack(act_buf).flatten(0, 1),
            "logp": torch.stack(logp_buf).flatten(),
            "value": values.flatten(),
            "advantage": advantages.flatten(),
            "return": (advantages + values).flatten(),
        }
        return data, obs

    def experience(self, dm: Any) -> Iterator[dict[str, torch.Tensor]]:
        env = dm.env
        obs, _ = env.reset(seed=dm.seed)
        gen = torch.Generator().manual_seed(dm.seed + 1)
        per_rollout = dm.num_envs * self.rollout_steps
        if per_rollout > self.total_env_steps:
            raise ConfigError(
                f"one PPO rollout ({self.rollout_steps} steps x {dm.num_envs} copies) exceeds "
                f"task.total_env_steps={self.total_env_steps}",
                hint="lower task.rollout_steps or data.num_envs, or raise task.total_env_steps",
            )
        # whole rollouts only, never past the budget
        while self._budget_left() and self.env_steps + per_rollout <= self.total_env_steps:
            data, obs = self._rollout(dm, env, obs)
            self._sync_observation_stats(dm)
            size = len(data["logp"])
            self._stop_updates = False
            for _ in range(self.update_epochs):
                perm = torch.randperm(size, generator=gen)
                for start in range(0, size, self.minibatch_size):
                    if self._stop_updates:
                        break
                    idx = perm[start : start + self.minibatch_size]
                    yield {k: v[idx] for k, v in data.items()}
        if self._trainer is not None:
            self.trainer.should_stop = True

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor:
        dist = self.model.distribution(batch["obs"], normalized=True)
        logp = dist.log_prob(batch["action"])
        entropy = dist.entropy().mean()
        value = self.model.value(batch["obs"], normalized=True)
        log_ratio = logp - batch["logp"]
        ratio = log_ratio.exp()
        adv = batch["advantage"]
        if self.normalize_advantages and len(adv) > 1:
            adv = (adv - adv.mean()) / (adv.std() + 1e-8)
        pg_loss = torch.max(-adv * ratio, -adv * ratio.clamp(1 - self.clip_coef, 1 + self.clip_coef)).mean()
        if self.clip_value:
            clipped = batch["value"] + (value - batch["value"]).clamp(-self.clip_coef, self.clip_coef)
            v_loss = 0.5 * torch.max((value - batch["return"]) ** 2, (clipped - batch["return"]) ** 2).mean()
        else:
            v_loss = 0.5 * ((value - batch["return"]) ** 2).mean()
        loss = pg_loss - self.ent_coef * entropy + self.vf_coef * v_loss
        with torch.no_grad():
            approx_kl = ((ratio - 1) - log_ratio).mean()
            clipfrac = ((ratio - 1.0).abs() > self.clip_coef).float().mean()
        if self.target_kl is not None and approx_kl > self.target_kl:
            self._stop_updates = True
        self._log_progress(
            loss,
            {
                "train/policy_loss": pg_loss,
                "train/value_loss": v_loss,
                "train/entropy": entropy,
                "train/approx_kl": approx_kl,
                "train/clipfrac": clipfrac,
            },
        )
        return loss

    def configure_optimizers(self) -> Any:
        per_rollout = self.rollout_steps * (self.trainer.datamodule.num_envs if self._trainer is not None else 1)
        rollouts = max(1, self.total_env_steps // per_rollout)
        total = rollouts * self.update_epochs * math.ceil(per_rollout / self.minibatch_size)
        return self._optimizers(self.model.parameters(), total)
