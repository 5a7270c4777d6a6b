"""Shared machinery of the RL tasks: the ``RLTask`` base, episode playing, schedules, greedy evaluation."""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Annotated, Any

import lightning as L
import numpy as np
import torch
from annotated_types import Ge
from torch import nn

from engine import ConfigError

#: Greedy episodes played at the end of every run (``test/eval_return``) and the seed of the first; ``engine
#: evaluate`` plays the same by default (`RLTask.evaluate_run`), so the two agree.
TEST_EPISODES, TEST_SEED = 100, 12345

#: Environments whose episodes succeed when their return is positive (goal reached).
_SUCCESS_ENVS = ("FrozenLake",)


def run_episodes(
    datamodule: Any, act: Callable[[torch.Tensor], torch.Tensor], episodes: int, seed: int, batch: int = 50
) -> dict[str, float]:
    """Play ``episodes`` episodes (episode i reset with seed ``seed + i``) with ``act``; return ``eval/*`` figures."""
    if episodes < 1:
        raise ConfigError(f"episodes must be at least 1, got {episodes}", hint="engine evaluate RUN episodes=N")
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
        self._done_at = -1  # a skipped optimizer step (PPO's target_kl) leaves global_step where it was

    def on_train_batch_end(self, trainer: L.Trainer, pl_module: Any, outputs: Any, batch: Any, batch_idx: int) -> None:
        if trainer.global_step % self.every or trainer.sanity_checking or trainer.global_step == self._done_at:
            return
        self._done_at = trainer.global_step
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
        num_threads: Annotated[int, Ge(1)] = 1,
        eval_every: int | None = None,
        eval_episodes: Annotated[int, Ge(1)] = 10,
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
        self.run_steps = (0, 0)  # (training, evaluation) env steps before a checkpoint was loaded (`test_step`)
        self.total_env_steps = total_env_steps
        self.optimizer_factory, self.scheduler_factory = optimizer, scheduler
        self.env_steps = 0
        self._logged_final = False
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
        final = self.env_steps >= self.total_env_steps and not self._logged_final
        if self.global_step % every and not final:
            return
        # once more when the budget is spent (not on every update of the last rollout: logging costs ~30 ms)
        self._logged_final = self._logged_final or final
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
        # the test stage reloads the best checkpoint after training: the run's step counts so far are kept beside
        self.run_steps = (max(self.env_steps, self.run_steps[0]), max(self.eval_env_steps, self.run_steps[1]))
        self.env_steps = int(state.get("env_steps", 0))
        self.episodes = int(state.get("episodes", 0))
        self.recent_returns.extend(state.get("recent_returns", []))
        self.recent_lengths.extend(state.get("recent_lengths", []))
        self.evaluations = int(state.get("evaluations", 0))
        self.eval_env_steps = int(state.get("eval_env_steps", 0))

    # ---------------------------------------------------------------- evaluation and deployment

    def forward(self, obs: torch.Tensor) -> torch.Tensor:
        return self.model(obs)

    @property
    def primary_metric(self) -> tuple[str, str]:
        """RL runs are judged by the mean return of greedy episodes: ``test/eval_return`` at the end of every
        run (`test_step`), ``val/eval_return`` during training with ``task.eval_every``."""
        return ("eval_return", "max")

    def test_step(self, batch: Any, batch_idx: int) -> None:
        """The end of a run: `TEST_EPISODES` greedy episodes of the (best) policy, logged as ``test/*``."""
        result = self.evaluate_run(self.trainer.datamodule, TEST_EPISODES, TEST_SEED)
        tested = int(result["eval/length_mean"] * result["eval/episodes"])
        trained, evaluated = max(self.env_steps, self.run_steps[0]), max(self.eval_env_steps, self.run_steps[1])
        logged = {
            "test/eval_return": result["eval/return_mean"],
            "test/eval_return_std": result["eval/return_std"],
            "test/episode_length": result["eval/length_mean"],
            "test/episodes": result["eval/episodes"],
            # every environment step the run took: training's budget, then the periodic and this final evaluation
            "test/env_steps_train": float(trained),
            "test/env_steps_eval": float(evaluated + tested),
            "test/env_steps_total": float(trained + evaluated + tested),
        }
        if "eval/success_rate" in result:
            logged["test/success_rate"] = result["eval/success_rate"]
        self.log_dict(logged, batch_size=1)

    def evaluate_run(self, datamodule: Any, episodes: int = TEST_EPISODES, seed: int = TEST_SEED) -> dict[str, float]:
        """Greedy / deterministic policy on ``episodes`` fresh episodes (seeds ``seed`` … ``seed + episodes - 1``).

        Args:
            episodes: episodes to play.
            seed: seed of the first episode (training used others).
        """
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
