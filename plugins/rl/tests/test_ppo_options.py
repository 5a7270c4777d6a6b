"""PPO's options against late-training collapse: learning-rate and clip annealing, target-KL early stop,
entropy schedule (issue 37, item 9). Tiny budgets: seconds each."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from engine import ConfigError
from engine.runs import load_checkpoint, open_run
from engine.testing import train_run

# 20 rollouts of 2 copies x 8 steps
TINY = (
    "task.total_env_steps=320",
    "task.rollout_steps=8",
    "data.num_envs=2",
    "task.minibatch_size=4",
    "task.update_epochs=2",
    "task.eval_every=null",
    "checkpoint.monitor=null",
    "checkpoint.every_n_train_steps=null",
    "policy.hidden=[8]",
    "optimizer.lr=0.01",
)


def _last(tmp_path: Path, *overrides: str) -> dict:
    run = train_run(*TINY, *overrides, root=tmp_path, recipe="rl/cartpole-ppo")
    assert open_run(run.run_dir).summary["status"] == "completed"
    return load_checkpoint(run.run_dir / "checkpoints" / "last.ckpt")


def test_anneal_lr_reaches_zero_at_the_end_of_the_budget_even_when_target_kl_skips_updates(tmp_path: Path) -> None:
    ckpt = _last(tmp_path, "scheduler=null", "task.anneal_lr=true", "task.target_kl=0.0001")
    group = ckpt["optimizer_states"][0]["param_groups"][0]
    # the last of 20 rollouts runs at lr x 1/20; a per-update schedule would stop far above (updates were skipped)
    assert group["base_lr"] == pytest.approx(0.01)
    assert group["lr"] == pytest.approx(0.01 / 20)


def test_target_kl_skips_the_offending_step_and_stops_the_rollouts_updates() -> None:
    from engine_rl.envs import GymEnvironment
    from engine_rl.models import MLPPolicy
    from engine_rl.tasks.ppo import PPO

    dm = GymEnvironment("CartPole-v1", num_envs=2, seed=0)
    dm.setup("fit")
    policy = MLPPolicy(4, 2, None, None, None, None, hidden=[8])
    task = PPO(policy, torch.optim.Adam, None, total_env_steps=64, rollout_steps=8, minibatch_size=4, target_kl=0.01)
    batches = task.experience(dm)
    first = next(batches)
    assert task.training_step(first, 0) is not None  # the rollout's own policy: KL 0, a step is taken
    assert task.env_steps == 16
    second = next(batches)
    second["logp"] = second["logp"] - 1.0  # as if the policy had moved: approximate KL e - 2 > 0.01
    assert task.training_step(second, 1) is None  # Lightning skips the step (SB3's early stop)
    assert task.kl_stops == 1
    third = next(batches)  # the rest of the rollout (2 more minibatches x 4 epochs) is dropped: a new rollout
    assert task.env_steps == 32 and not task._stop_updates
    assert task.training_step(third, 2) is not None
    dm.teardown("fit")


def test_target_kl_bounds_the_updates_of_a_run(tmp_path: Path) -> None:
    full = _last(tmp_path / "a")
    assert full["global_step"] == 20 * 2 * 4  # rollouts x epochs x minibatches
    stopped = _last(tmp_path / "b", "task.target_kl=0.0001", "optimizer.lr=0.5")
    assert 20 <= stopped["global_step"] < 20 * 2 * 4


def test_entropy_and_clip_schedules() -> None:
    from engine_rl.models import MLPPolicy
    from engine_rl.tasks.ppo import PPO

    policy = MLPPolicy(4, 2, None, None, None, None, hidden=[8])
    task = PPO(policy, torch.optim.Adam, None, ent_coef=0.01, ent_coef_end=0.0, anneal_clip=True, clip_coef=0.2)
    task._schedule(0.0)
    assert (task._ent, task._clip) == (0.01, 0.2)
    task._schedule(0.75)
    assert task._ent == pytest.approx(0.0025) and task._clip == pytest.approx(0.05)
    constant = PPO(policy, torch.optim.Adam, None, ent_coef=0.01)
    constant._schedule(0.75)
    assert (constant._ent, constant._clip) == (0.01, 0.2)  # the defaults: CleanRL's and SB3's constants


def test_anneal_lr_with_a_scheduler_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="anneal_lr and a scheduler"):
        train_run(*TINY, "scheduler=rl.linear", root=tmp_path, recipe="rl/cartpole-ppo")


def test_a_missing_box2d_is_one_line_naming_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    import gymnasium as gym
    from engine_rl.spaces import make_env

    def missing(*args: object, **kwargs: object) -> None:
        raise gym.error.DependencyNotInstalled("Box2D is not installed, run `pip install swig` ...\nmore")

    monkeypatch.setattr(gym, "make", missing)
    with pytest.raises(ConfigError, match="needs a package that is not installed: Box2D") as info:
        make_env("LunarLander-v3")
    assert "\n" not in info.value.args[0] and "box2d" in (info.value.hint or "")


def test_the_spent_budget_is_logged_once_not_at_every_update_of_the_last_rollout(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from engine_rl.tasks.ppo import PPO

    logged: list[dict] = []
    original = PPO.log_dict

    def counting(self: PPO, metrics: dict, *args: object, **kwargs: object) -> None:
        logged.append(metrics)
        original(self, metrics, *args, **kwargs)

    monkeypatch.setattr(PPO, "log_dict", counting)
    # one rollout (16 steps), then 8 updates, all after the budget is spent; logging every 1000 updates
    train_run(
        *TINY, "task.total_env_steps=16", "trainer.log_every_n_steps=1000", root=tmp_path, recipe="rl/cartpole-ppo"
    )
    rows = [m for m in logged if "train/loss" in m]
    assert len(rows) == 1 and rows[0]["train/env_steps"] == 16  # each self.log costs ~30 ms on a shared core
