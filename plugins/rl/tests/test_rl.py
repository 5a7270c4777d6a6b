"""engine-rl tests: conformance, environments, each task trained briefly, evaluation, bad input, commands.

Fast by design (tiny budgets). Quality runs (CartPole solved, FrozenLake success,
Pendulum return) live in the recipes and in ``bench/rl_seeds.py``.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env

import engine
from engine import ConfigError
from engine.runs import open_run
from engine.testing import run_cli, train_run


def train(tmp_path: Path, *overrides: str, recipe: str | None = None, resume: Path | None = None) -> Path:
    """Compose, plan and train a quiet run in-process (every step logged); return its run directory."""
    return train_run("trainer.log_every_n_steps=1", *overrides, root=tmp_path, recipe=recipe, resume=resume).run_dir


def evaluate(run_dir: Path, episodes: int = 10, seed: int = 123) -> dict[str, float]:
    """What `engine evaluate` does for a run."""
    r = open_run(run_dir)
    dm = r.datamodule()
    task = r.task(facts=dm.facts)
    return task.evaluate_run(dm, episodes=episodes, seed=seed)


# --------------------------------------------------------------------------- conformance


def test_conformance(engine_check: Any) -> None:
    # rl.gym builds with its defaults (CartPole-v1), so the models are checked on CartPole facts and
    # observations; each task gets rl.gym and its own slot defaults (rl.q_network, rl.mlp_policy); every
    # recipe validates and completes a one-batch fast_dev_run. Tabular Q-learning needs a discrete world.
    passed = engine_check("rl", task_overrides={"rl.q_learning": ["data=rl.gym", "data.env_id=FrozenLake-v1"]})
    assert any("recipe 'rl/cartpole-ppo' completes" in p for p in passed)
    assert any("task 'rl.dqn' completes" in p for p in passed)
    assert any("model 'rl.q_network' forward/backward" in p for p in passed)


# --------------------------------------------------------------------------- environments


@pytest.mark.parametrize(
    "env_id, kwargs",
    [("CartPole-v1", {}), ("FrozenLake-v1", {"map_name": "4x4", "is_slippery": True}), ("Pendulum-v1", {})],
)
def test_env_checker_passes_on_the_plugin_environments(env_id: str, kwargs: dict[str, Any]) -> None:
    from engine_rl.envs import GymEnvironment
    from engine_rl.spaces import make_env

    env = make_env(env_id, kwargs)
    check_env(env.unwrapped, skip_render_check=True)
    env.close()
    # the vectorised, wrapped environment of the data source agrees with its facts
    dm = GymEnvironment(env_id, kwargs, num_envs=3, seed=7, normalize_observation=env_id == "Pendulum-v1")
    dm.setup("fit")
    obs, _ = dm.env.reset(seed=7)
    assert obs.shape == (3, *dm.facts["observation_shape"])
    assert dm.env.single_observation_space.contains(obs[0])
    facts = dm.facts
    if isinstance(dm.env.single_action_space, gym.spaces.Discrete):
        assert facts["num_actions"] == facts["action_discrete"] == dm.env.single_action_space.n
    else:
        assert facts["action_dim"] == 1 and facts["action_low"] == [-2.0] and facts["action_high"] == [2.0]
    dm.teardown("fit")


def test_facts_are_json_friendly_and_seeded() -> None:
    import json

    from engine_rl.envs import GymEnvironment

    dm = GymEnvironment("FrozenLake-v1", {"is_slippery": True}, num_envs=2, seed=3)
    facts = json.loads(json.dumps(dm.facts))
    assert facts["observation_discrete"] == 16 and facts["num_states"] == 16 and facts["in_features"] == 16
    assert facts["action_discrete"] == 4 and facts["action_low"] is None and facts["env_id"] == "FrozenLake-v1"
    # without a task, the source streams random transitions; the same seed gives the same stream
    a = next(iter(dm.train_dataloader()))
    dm2 = GymEnvironment("FrozenLake-v1", {"is_slippery": True}, num_envs=2, seed=3)
    b = next(iter(dm2.train_dataloader()))
    assert all(torch.equal(x, y) for x, y in zip(a, b, strict=True))
    assert a[0].shape == (32,)


def test_normalisation_wrappers_and_model_statistics() -> None:
    from engine_rl.envs import GymEnvironment
    from engine_rl.models import MLPPolicy

    dm = GymEnvironment("Pendulum-v1", num_envs=2, normalize_observation=True, normalize_reward=True)
    dm.setup("fit")
    dm.env.reset(seed=0)
    for _ in range(200):
        dm.env.step(dm.env.action_space.sample())
    mean, var = dm.observation_stats()
    f = dm.facts
    policy = MLPPolicy(f["in_features"], None, f["action_dim"], None, f["action_low"], f["action_high"])
    policy.encoder.set_stats(torch.as_tensor(mean), torch.as_tensor(var))
    assert len(dm._obs_normalizers) == 2 and all(w.obs_rms.count > 100 for w in dm._obs_normalizers)
    raw = np.array([[1.0, 0.0, 3.0]], dtype=np.float32)
    expected = torch.as_tensor((raw - mean) / np.sqrt(var + 1e-8), dtype=torch.float32)
    assert torch.allclose(policy.encoder(torch.as_tensor(raw)), expected, atol=1e-5)
    # the deployable forward maps raw observations to a bounded action
    out = policy(torch.randn(5, 3) * 10)
    assert out.shape == (5, 1) and bool((out.abs() <= 2.0).all())
    dm.teardown("fit")


# --------------------------------------------------------------------------- tasks train and evaluate


@pytest.mark.slow
def test_q_learning_learns_deterministic_frozenlake(tmp_path: Path) -> None:
    run_dir = train(
        tmp_path,
        "task=rl.q_learning",
        "data=rl.gym",
        "data.env_id=FrozenLake-v1",
        "data.env_kwargs={is_slippery: false}",
        "data.num_envs=16",
        "task.total_env_steps=24000",
        "task.learning_rate=0.5",
        "task.epsilon_end=0.1",
        "trainer.max_epochs=1",
    )
    summary = open_run(run_dir).summary
    assert summary["status"] == "completed" and summary["global_step"] == 1500
    assert summary["metrics"]["train/env_steps"] == 24000
    result = evaluate(run_dir, episodes=20)
    assert result["eval/episodes"] == 20
    assert result["eval/success_rate"] == 1.0  # the greedy policy walks the shortest path to the goal
    assert result["eval/length_mean"] == 6.0


def test_dqn_trains_and_evaluates(tmp_path: Path) -> None:
    run_dir = train(
        tmp_path,
        "task=rl.dqn",
        "data=rl.gym",
        "q_network.hidden=[32]",
        "task.total_env_steps=600",
        "task.learning_starts=200",
        "task.train_frequency=4",
        "task.gradient_steps=2",
        "task.target_update_interval=50",
        "data.num_envs=2",
        "trainer.max_epochs=1",
    )
    r = open_run(run_dir)
    assert r.summary["status"] == "completed"
    # learning from env step 200 to 600 = vector steps 100..300 (2 copies); every 4th trains twice: 51 * 2
    assert r.summary["global_step"] == 102
    assert r.summary["metrics"]["train/episodes"] > 0
    task = r.task()
    assert set(task.state_dict()) >= {"model.net.0.weight", "target.net.0.weight"}
    result = evaluate(run_dir, episodes=5)
    assert result["eval/episodes"] == 5
    assert 1 <= result["eval/return_min"] <= result["eval/return_mean"] <= result["eval/return_max"] <= 500
    assert result["eval/return_std"] >= 0


@pytest.mark.slow
def test_ppo_discrete_improves_on_cartpole(tmp_path: Path) -> None:
    run_dir = train(tmp_path, "trainer.max_epochs=1", "task.total_env_steps=12288", recipe="rl/cartpole-ppo")
    r = open_run(run_dir)
    assert r.summary["status"] == "completed"
    assert r.summary["metrics"]["train/env_steps"] == 12288
    result = evaluate(run_dir, episodes=10)
    # a uniformly random policy averages ~22 on CartPole; 12k steps of PPO are far past that
    assert result["eval/return_mean"] > 60, result


def test_ppo_continuous_trains_and_evaluates(tmp_path: Path) -> None:
    run_dir = train(
        tmp_path,
        "trainer.max_epochs=1",
        "task.total_env_steps=512",
        "task.rollout_steps=128",
        "task.update_epochs=2",
        "task.minibatch_size=64",
        "data.normalize_observation=true",
        recipe="rl/pendulum-ppo",
    )
    r = open_run(run_dir)
    assert r.summary["status"] == "completed" and r.summary["global_step"] == 16
    task = r.task()
    # the observation normaliser's statistics travel in the checkpoint, inside the deployable model
    assert not torch.allclose(task.model.encoder.obs_var, torch.ones(3))
    result = evaluate(run_dir, episodes=4, seed=5)
    assert result["eval/episodes"] == 4 and result["eval/length_mean"] == 200
    assert -2000 < result["eval/return_mean"] < 0
    assert evaluate(run_dir, episodes=4, seed=5) == result  # fresh seeds, deterministic policy: reproducible


def test_gsde_exploration_noise_is_state_dependent_and_resampled_on_schedule() -> None:
    from engine_rl.models import MLPPolicy

    torch.manual_seed(0)
    policy = MLPPolicy(3, None, 1, None, [-2.0], [2.0], hidden=[8, 8], use_sde=True, sde_sample_freq=2)
    assert policy.log_std.shape == (8, 1)  # one std per (latent feature, action)
    obs = torch.randn(4, 3)
    with torch.no_grad():
        dist = policy.distribution(obs, normalized=True)
        latent, mean = policy._latent_and_mean(obs, normalized=True)
        # the Gaussian's variance is sum_j latent_j^2 * std_j^2: state-dependent
        assert torch.allclose(dist.variance, (latent**2) @ policy.log_std.exp() ** 2 + 1e-6, atol=1e-6)
        a0 = policy.sample(obs, dist, 0, normalized=True)
        noise0 = policy._noise.clone()
        a1 = policy.sample(obs, dist, 1, normalized=True)  # same matrices: same action for the same state
        assert torch.equal(a0, a1) and torch.equal(policy._noise, noise0)
        policy.sample(obs, dist, 2, normalized=True)  # every sde_sample_freq steps: new matrices
        assert not torch.equal(policy._noise, noise0) and policy._noise.shape == (4, 8, 1)
        assert torch.allclose(a0, mean + torch.bmm(latent.unsqueeze(1), noise0).squeeze(1))
        assert torch.isfinite(dist.log_prob(a0)).all()
        assert torch.equal(policy(obs), mean.clamp(-2, 2))  # deployment: the deterministic action
    with pytest.raises(ConfigError, match="use_sde"):
        MLPPolicy(4, 2, None, None, None, None, use_sde=True)
    with pytest.raises(ConfigError, match="sde_sample_freq"):
        MLPPolicy(3, None, 1, None, [-2.0], [2.0], use_sde=True, sde_sample_freq=0)


def test_trained_policy_deploys_like_any_model(tmp_path: Path) -> None:
    from engine_rl.models import MLPPolicy, QNetwork

    for model in (
        MLPPolicy(4, 2, None, None, None, None),
        MLPPolicy(3, None, 1, None, [-2.0], [2.0]),
        MLPPolicy(3, None, 1, None, [-2.0], [2.0], use_sde=True, sde_sample_freq=4),
        QNetwork(16, 4, 16),
    ):
        model.eval()
        x = torch.randint(0, 16, (6,)) if isinstance(model, QNetwork) else torch.randn(6, model.encoder.in_features)
        target = engine.create("deploy", "export")
        path = target.export(model, x, tmp_path)
        got = target.load(path)(x)
        assert torch.allclose(got, model(x), atol=1e-5)


def test_linear_scheduler() -> None:
    from engine_rl.optim import linear

    opt = torch.optim.SGD(torch.nn.Linear(2, 2).parameters(), lr=1.0)
    sched = linear(opt, total_steps=4, end_factor=0.0)["scheduler"]
    lrs = []
    for _ in range(5):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    assert lrs == [1.0, 0.75, 0.5, 0.25, 0.0]


# --------------------------------------------------------------------------- bad input


def test_unknown_environment_suggests_the_registered_id() -> None:
    from engine_rl.spaces import check_env_id

    with pytest.raises(ConfigError, match="did you mean 'CartPole-v1'"):
        check_env_id("CartPol-v1")
    with pytest.raises(ConfigError, match="CartPole-v1"):
        check_env_id("cartpole")


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["data.env_id=CartPol-v1"], "unknown gymnasium environment 'CartPol-v1' — did you mean 'CartPole-v1'"),
        (["task=rl.dqn", "data.env_id=Pendulum-v1"], "rl.dqn needs discrete actions, but Pendulum-v1"),
        (["task=rl.q_learning", "data.env_id=CartPole-v1"], "rl.q_learning is tabular and needs discrete obs"),
        (["task=rl.q_learning", "data.env_id=MountainCarContinuous-v0"], "needs discrete actions"),
        (["data.env_kwargs={no_such_kwarg: 1}"], "cannot make gymnasium environment 'CartPole-v1'"),
        (["data.env_id=FrozenLake-v1", "data.normalize_observation=true"], "discrete observations: they cannot"),
        (["policy=rl.q_network"], "rl.ppo needs an actor-critic policy"),
    ],
)
def test_bad_input_fails_before_any_compute(tmp_path: Path, overrides: list[str], message: str) -> None:
    # caught while planning (rl.gym's check: ids, spaces) or when building (kwargs, model slots)
    with pytest.raises(ConfigError, match=message):
        train(tmp_path, "task=rl.ppo", "data=rl.gym", *overrides)
    assert not any(tmp_path.iterdir())  # no run directory: nothing was trained


def test_task_checks_spaces_when_built_directly() -> None:
    from engine_rl.tasks.dqn import DQN
    from engine_rl.tasks.qlearning import QLearning

    with pytest.raises(ConfigError, match="discrete observations"):
        QLearning(None, 2, None, 2)
    with pytest.raises(ConfigError, match="discrete actions"):
        DQN(torch.nn.Linear(3, 1), torch.optim.Adam, None, None)


# --------------------------------------------------------------------------- commands


@pytest.mark.parametrize(
    "overrides, message",
    [
        (["rl/cartpole-ppo", "data.env_id=CartPol-v1"], "did you mean 'CartPole-v1'"),
        (["data=rl.gym", "task=rl.q_learning"], "needs discrete observations, but CartPole-v1"),
        (["data=rl.gym", "task=rl.dqn", "data.env_id=Pendulum-v1"], "rl.dqn needs discrete actions, but Pendulum-v1"),
        (["rl/cartpole-ppo", "data.env_id=FrozenLake-v1", "data.normalize_observation=true"], "cannot be normalised"),
        (["rl/cartpole-ppo", "data.env_id=Blackjack-v1"], "observation space of Blackjack-v1 is not supported"),
    ],
)
def test_dry_run_catches_bad_environments(overrides: list[str], message: str, cli: Any) -> None:
    out = cli("run", *overrides, "--dry-run")
    assert out.returncode == 2, out.stdout + out.stderr
    assert message in out.stderr and "Traceback" not in out.stderr


def test_config_checks_do_not_import_gymnasium_for_known_ids() -> None:
    import subprocess
    import sys

    code = (
        "import sys; from engine_rl.checks import check_config; "
        "check_config({'data': {'name': 'rl.gym', 'env_id': 'Pendulum-v1'}, 'task': {'name': 'rl.ppo'}}); "
        "check_config({'data': {'name': 'rl.gym', 'env_id': 'LunarLander-v3', 'env_kwargs': {'continuous': True}}, "
        "'task': 'rl.dqn'}); "
        "assert 'gymnasium' not in sys.modules and 'torch' not in sys.modules and 'numpy' not in sys.modules"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr


def test_known_environment_table_matches_gymnasium() -> None:
    from engine_rl.checks import KNOWN_ENVS
    from engine_rl.spaces import space_facts

    checked = 0
    for env_id, kinds in KNOWN_ENVS.items():
        if env_id not in gym.registry:
            continue
        try:
            facts = space_facts(env_id)
        except ConfigError as exc:
            if "not supported" in str(exc):  # Blackjack's Tuple observations
                assert kinds[0] == "o", env_id
                checked += 1
            continue  # Box2D / MuJoCo extras not installed here
        assert kinds[0] == ("d" if facts["observation_discrete"] else "b"), env_id
        assert kinds[1] == ("d" if facts["action_discrete"] else "b"), env_id
        checked += 1
    assert checked >= 12


@pytest.mark.slow
def test_periodic_evaluation_keeps_the_best_checkpoint_and_resume_keeps_the_buffer(tmp_path: Path) -> None:
    overrides = [
        "task=rl.dqn",
        "data=rl.gym",
        "q_network.hidden=[32]",
        "task.total_env_steps=800",
        "task.learning_starts=100",
        "task.train_frequency=10",
        "task.gradient_steps=5",
        "task.eval_every=20",
        "task.eval_episodes=3",
        "checkpoint.monitor=val/eval_return",
        "checkpoint.mode=max",
        "trainer.max_epochs=1",
    ]
    run_dir = train(tmp_path, *overrides)
    r = open_run(run_dir)
    assert r.config["checkpoint"]["every_n_train_steps"] == 20  # filled in from task.eval_every
    summary = r.summary
    assert (
        summary["status"] == "completed" and summary["global_step"] == 355
    )  # 71 phases (env steps 100, 110, ..., 800) x 5 updates
    assert summary["monitor"] == "val/eval_return" and summary["best_checkpoint"]
    best_score = summary["best_score"]
    metrics = (run_dir / "csv" / "0" / "metrics.csv").read_text().splitlines()
    header = metrics[0].split(",")
    col = header.index("val/eval_return")
    evals = [float(row.split(",")[col]) for row in metrics[1:] if row.split(",")[col]]
    assert len(evals) == 17 and math.isclose(max(evals), best_score, rel_tol=1e-6)  # one row per evaluation
    assert summary["metrics"]["val/env_steps"] >= 17 * 3 * 8  # evaluation steps are reported, not budgeted
    assert summary["metrics"]["train/env_steps"] == 800
    # issue 37 item 8: the primary metric is the best checkpoint's fresh evaluation (100 new episodes), not the best
    # of the periodic 3-episode ones; every environment step is counted beside the training budget
    m = summary["metrics"]
    assert summary["primary_metric"]["name"] == "test/eval_return" and m["test/episodes"] == 100
    assert summary["primary_metric"]["value"] == summary["best_metrics"]["test/eval_return"]
    tested = round(m["test/episode_length"] * 100)
    assert m["test/env_steps_train"] == 800 and m["test/env_steps_eval"] == m["val/env_steps"] + tested
    assert m["test/env_steps_total"] == 800 + m["test/env_steps_eval"]
    # the replay buffer travels in the checkpoint and a resumed run continues with it
    ckpt = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    saved = ckpt["rl"]["replay_buffer"]
    assert saved["reward"].shape[0] == ckpt["rl"]["env_steps"] and saved["obs"].shape[1:] == (4,)
    train(tmp_path, *overrides[:-1], "task.total_env_steps=1000", resume=run_dir)
    ckpt = torch.load(run_dir / "checkpoints" / "last.ckpt", weights_only=True)
    assert ckpt["rl"]["env_steps"] > 800 and ckpt["rl"]["replay_buffer"]["reward"].shape[0] == ckpt["rl"]["env_steps"]


def test_replay_buffer_state_round_trip_keeps_order_after_wrapping() -> None:
    from engine_rl.tasks.dqn import ReplayBuffer

    buf = ReplayBuffer(5, (2,), np.float32, 0)
    for i in range(7):  # wraps: holds transitions 2..6
        x = np.full((1, 2), i, dtype=np.float32)
        buf.add(x, np.array([i % 2]), np.array([float(i)]), x + 1, np.array([0.0]))
    state = buf.state_dict()
    assert state["reward"].tolist() == [2.0, 3.0, 4.0, 5.0, 6.0]
    small = ReplayBuffer(3, (2,), np.float32, 0)
    small.load_state_dict(state)
    assert small.size == 3 and small.reward.tolist() == [4.0, 5.0, 6.0]
    assert torch.equal(small.state_dict()["next_obs"][:, 0], torch.tensor([5.0, 6.0, 7.0]))


def test_cli_bad_environment_is_one_line_and_writes_nothing(tmp_path: Path, cli: Any) -> None:
    bad = cli("run", "task=rl.q_learning", "data=rl.gym", "data.env_id=Pendulum-v1", f"run.dir={tmp_path}")
    assert bad.returncode == 2, bad.stderr
    assert "needs discrete actions" in bad.stderr and "Traceback" not in bad.stderr
    bad = cli("run", "rl/cartpole-dqn", "data.env_id=CartPoel-v1", f"run.dir={tmp_path}")
    assert bad.returncode == 2 and "did you mean 'CartPole-v1'" in bad.stderr
    assert not any(tmp_path.iterdir())


@pytest.mark.slow
def test_evaluate_command(tmp_path: Path) -> None:
    # `engine evaluate` is the experiments plugin's command
    run_dir = train(
        tmp_path,
        "task=rl.q_learning",
        "data=rl.gym",
        "data.env_id=FrozenLake-v1",
        "task.total_env_steps=200",
        "trainer.max_epochs=1",
    )
    done = run_cli("evaluate", str(run_dir), "episodes=7", "seed=1")
    assert done.returncode == 0, done.stderr
    assert "eval/success_rate" in done.stdout and re.search(r"eval/episodes\s+7\n", done.stdout), done.stdout


def test_data_follows_the_run_seed_and_implies_ppo() -> None:
    plan = engine.plan(engine.compose(None, overrides=["data=rl.gym", "seed=7"]))
    assert plan.config["task"]["name"] == "rl.ppo" and plan.config["data"]["seed"] == 7
    assert plan.config["checkpoint"]["every_n_train_steps"] is None  # no periodic evaluation
    overrides = ["data=rl.gym", "task=rl.dqn", "seed=7", "data.seed=3", "task.eval_every=50"]
    plan = engine.plan(engine.compose(None, overrides=overrides))
    assert plan.config["data"]["seed"] == 3 and plan.config["checkpoint"]["every_n_train_steps"] == 50
    again = engine.plan(plan.config)  # the resolved config plans to itself
    assert again.config == plan.config


def test_rl_group_alone_prints_its_help(cli: Any) -> None:
    out = cli("rl")
    assert out.returncode == 0 and "envs" in out.stdout and "engine evaluate RUN episodes=100" in out.stdout


def test_rl_envs_command() -> None:
    out = run_cli("rl", "envs", "frozen", "--spaces")
    assert out.returncode == 0, out.stderr
    assert "FrozenLake-v1" in out.stdout and "Discrete(16)" in out.stdout
    missing = run_cli("rl", "envs", "no-such-env-anywhere")
    assert missing.returncode == 2 and "no gymnasium environment matches" in missing.stderr
    helped = run_cli("rl", "envs", "--help")
    assert helped.returncode == 0 and "--spaces" in helped.stdout


def test_episode_return_metric_is_the_mean_of_the_last_100_episodes() -> None:
    from engine_rl.tasks.common import RLTask

    task = RLTask(10, None, None)
    for i in range(150):
        task._record({"episode": {"r": np.array([float(i)]), "l": np.array([i])}, "_episode": np.array([True])})
    assert task.episodes == 150
    assert math.isclose(float(np.mean(task.recent_returns)), float(np.mean(np.arange(50, 150))))


def test_every_run_ends_with_its_primary_metric(tmp_path: Path, cli: Any) -> None:
    """Greedy test episodes on the best checkpoint: the results table, summary.json and `runs list` show them."""
    r = cli(
        "run",
        "rl/frozenlake-q",
        "task.total_env_steps=640",
        "data.num_envs=32",
        f"run.dir={tmp_path}",
        "run.name=q",
    )
    assert r.returncode == 0, r.stderr
    table = r.stdout.split("metric", 1)[1].splitlines()
    assert table[1].split()[:2] == ["test/eval_return", "*"], r.stdout  # the primary metric, first
    summary = open_run(tmp_path / "q").summary
    primary = summary["primary_metric"]
    assert primary["name"] == "test/eval_return" and primary["mode"] == "max" and 0 <= primary["value"] <= 1
    assert 0 <= summary["metrics"]["test/success_rate"] <= 1
    listed = cli("runs", "list", "--dir", str(tmp_path))
    row = next(line for line in listed.stdout.splitlines() if line.startswith("q "))
    assert f"{primary['value']:.4f}" in row, listed.stdout
