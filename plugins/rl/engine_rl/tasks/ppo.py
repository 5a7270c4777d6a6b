"""Proximal policy optimisation (PPO)."""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from typing import Annotated, Any

import numpy as np
import torch
from annotated_types import Ge, Gt, Le
from torch import nn

from engine import ConfigError
from engine_rl.tasks.common import RLTask


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
        ent_coef: weight of the entropy bonus (at the start, with ent_coef_end).
        ent_coef_end: with a value, the entropy weight moves linearly from ent_coef to it over total_env_steps
            (None: constant ent_coef, as in CleanRL and SB3).
        vf_coef: weight of the value loss.
        normalize_advantages: standardise advantages in each minibatch.
        target_kl: stop a rollout's updates at the first minibatch whose approximate KL to the rollout's policy
            exceeds it, without taking that minibatch's step (SB3's early stop; None: never, the CleanRL/SB3 default).
        anneal_lr: set the learning rate to lr x (1 - env steps / total_env_steps) before each rollout (CleanRL's
            anneal_lr, default true there; SB3's default is constant): it reaches ~0 at the end of the budget
            however many updates target_kl skipped. Do not combine with a scheduler.
        anneal_clip: anneal clip_coef the same way (rl-baselines3-zoo's lin_0.2; default constant).
        num_threads: torch CPU threads while training and evaluating (1 is fastest for small RL networks).
        eval_every: every this many optimizer steps, evaluate the greedy policy and log val/eval_return (None: never).
        eval_episodes: episodes per periodic evaluation (their env steps are logged as val/env_steps, not budgeted).
    """

    def __init__(
        self,
        policy: nn.Module,
        optimizer: Callable[..., Any],
        scheduler: Any,
        total_env_steps: Annotated[int, Ge(1)] = 100_000,
        rollout_steps: Annotated[int, Ge(1)] = 128,
        minibatch_size: Annotated[int, Ge(1)] = 64,
        update_epochs: Annotated[int, Ge(1)] = 4,
        gamma: Annotated[float, Ge(0), Le(1)] = 0.99,
        gae_lambda: Annotated[float, Ge(0), Le(1)] = 0.95,
        clip_coef: Annotated[float, Gt(0)] = 0.2,
        clip_value: bool = False,
        ent_coef: Annotated[float, Ge(0)] = 0.0,
        vf_coef: Annotated[float, Ge(0)] = 0.5,
        normalize_advantages: bool = True,
        target_kl: Annotated[float, Gt(0)] | None = None,
        ent_coef_end: Annotated[float, Ge(0)] | None = None,
        anneal_lr: bool = False,
        anneal_clip: bool = False,
        num_threads: Annotated[int, Ge(1)] = 1,
        eval_every: int | None = None,
        eval_episodes: Annotated[int, Ge(1)] = 10,
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
        if anneal_lr and scheduler is not None:
            raise ConfigError(
                "task.anneal_lr and a scheduler both set the learning rate",
                hint="set scheduler=null or anneal_lr=false",
            )
        self.ent_coef_end, self.anneal_lr, self.anneal_clip = ent_coef_end, anneal_lr, anneal_clip
        self._ent, self._clip = ent_coef, clip_coef  # this rollout's values (schedules)
        self._stop_updates = False
        self.kl_stops = 0  # rollouts whose updates target_kl cut short

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
            self._schedule(self.env_steps / self.total_env_steps)
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

    def _schedule(self, progress: float) -> None:
        """This rollout's learning rate, clip range and entropy weight (``progress``: budget used, in [0, 1))."""
        left = 1.0 - progress
        self._clip = self.clip_coef * left if self.anneal_clip else self.clip_coef
        if self.ent_coef_end is not None:
            self._ent = self.ent_coef + (self.ent_coef_end - self.ent_coef) * progress
        if self.anneal_lr and self._trainer is not None:
            for optimizer in self.trainer.optimizers:
                for group in optimizer.param_groups:
                    group.setdefault("base_lr", group["lr"])  # kept in the optimizer's state: a resume continues
                    group["lr"] = group["base_lr"] * left

    def training_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> torch.Tensor | None:
        dist = self.model.distribution(batch["obs"], normalized=True)
        logp = dist.log_prob(batch["action"])
        entropy = dist.entropy().mean()
        value = self.model.value(batch["obs"], normalized=True)
        log_ratio = logp - batch["logp"]
        ratio = log_ratio.exp()
        adv = batch["advantage"]
        if self.normalize_advantages and len(adv) > 1:
            adv = (adv - adv.mean()) / (adv.std() + 1e-8)
        clip = self._clip
        pg_loss = torch.max(-adv * ratio, -adv * ratio.clamp(1 - clip, 1 + clip)).mean()
        if self.clip_value:
            clipped = batch["value"] + (value - batch["value"]).clamp(-clip, clip)
            v_loss = 0.5 * torch.max((value - batch["return"]) ** 2, (clipped - batch["return"]) ** 2).mean()
        else:
            v_loss = 0.5 * ((value - batch["return"]) ** 2).mean()
        loss = pg_loss - self._ent * entropy + self.vf_coef * v_loss
        with torch.no_grad():
            approx_kl = ((ratio - 1) - log_ratio).mean()
            clipfrac = ((ratio - 1.0).abs() > clip).float().mean()
        if self.target_kl is not None and approx_kl > self.target_kl:
            self._stop_updates = True  # this rollout's remaining minibatches are not yielded
            self.kl_stops += 1
            return None  # Lightning skips this optimizer step
        self._log_progress(
            loss,
            {
                "train/policy_loss": pg_loss,
                "train/value_loss": v_loss,
                "train/entropy": entropy,
                "train/approx_kl": approx_kl,
                "train/clipfrac": clipfrac,
                "train/ent_coef": self._ent,
                "train/clip_coef": clip,
            },
        )
        return loss

    def configure_optimizers(self) -> Any:
        per_rollout = self.rollout_steps * (self.trainer.datamodule.num_envs if self._trainer is not None else 1)
        rollouts = max(1, self.total_env_steps // per_rollout)
        total = rollouts * self.update_epochs * math.ceil(per_rollout / self.minibatch_size)
        return self._optimizers(self.model.parameters(), total)
