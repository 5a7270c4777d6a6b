"""engine-rl: reinforcement learning on gymnasium environments (declarations only: no torch here)."""

from __future__ import annotations

import argparse

from engine import CommandSink, Component, Recipe, hookimpl

ENGINE_API = ">=1,<2"

_FACTS = (
    "env_id",
    "num_envs",
    "observation_shape",
    "observation_discrete",
    "num_states",
    "in_features",
    "input_shape",
    "action_discrete",
    "num_actions",
    "action_shape",
    "action_dim",
    "action_low",
    "action_high",
    "normalize_observation",
    "normalize_reward",
)


@hookimpl
def engine_data_sources() -> list[Component]:
    return [
        Component(
            "gym",
            "engine_rl.envs:GymEnvironment",
            "Any gymnasium environment, vectorised and seeded; streams experience to RL tasks",
            facts=_FACTS,
            task="rl.ppo",
            # torch- and gymnasium-free: ids, task/space fit, the seed and checkpoint cadence (--dry-run too)
            check="engine_rl.checks:check_gym",
        )
    ]


@hookimpl
def engine_models() -> list[Component]:
    m = "engine_rl.models"
    return [
        Component("mlp_policy", f"{m}:MLPPolicy", "Actor-critic MLP, categorical or Gaussian head (PPO)"),
        Component("q_network", f"{m}:QNetwork", "MLP Q-network, one value per discrete action (DQN)"),
    ]


@hookimpl
def engine_schedulers() -> list[Component]:
    return [Component("linear", "engine_rl.optim:linear", "Linear learning-rate decay over the run (per step)")]


@hookimpl
def engine_tasks() -> list[Component]:
    t = "engine_rl.tasks"
    return [
        Component(
            "q_learning",
            f"{t}.qlearning:QLearning",
            "Tabular Q-learning (discrete observations and actions), TD update as an SGD step",
        ),
        Component(
            "dqn",
            f"{t}.dqn:DQN",
            "DQN: replay buffer, target network, epsilon schedule, double DQN",
            slots={"q_network": "model", "optimizer": "optimizer", "scheduler": "scheduler"},
            defaults={"q_network": "rl.q_network", "optimizer": "adam", "scheduler": None},
            required_slots=("q_network",),
        ),
        Component(
            "ppo",
            f"{t}.ppo:PPO",
            "PPO: clipped objective, GAE, entropy bonus; discrete and continuous actions",
            slots={"policy": "model", "optimizer": "optimizer", "scheduler": "scheduler"},
            defaults={"policy": "rl.mlp_policy", "optimizer": "adam", "scheduler": None},
            required_slots=("policy",),
        ),
    ]


@hookimpl
def engine_recipes() -> list[Recipe]:
    r = "engine_rl:recipes"
    return [
        Recipe(
            "frozenlake-q",
            f"{r}/frozenlake-q.yaml",
            "Tabular Q-learning on FrozenLake 4x4 slippery, success >= 0.70",
            targets=("eval/success_rate >= 0.70",),
        ),
        Recipe(
            "cartpole-dqn",
            f"{r}/cartpole-dqn.yaml",
            "Double DQN, 3-step returns, lr decaying to 0, on CartPole-v1, 100k steps; the best evaluation is kept",
            targets=("eval/return_mean >= 475", "train/env_steps <= 100000"),
        ),
        Recipe(
            "cartpole-ppo",
            f"{r}/cartpole-ppo.yaml",
            "PPO solves CartPole-v1 (eval >= 475) in <= 100k steps",
            targets=("eval/return_mean >= 475", "train/env_steps <= 100000"),
        ),
        Recipe(
            "pendulum-ppo",
            f"{r}/pendulum-ppo.yaml",
            "PPO, Gaussian policy, on Pendulum-v1: mean return >= -250",
            targets=("eval/return_mean >= -250",),
        ),
        Recipe(
            "lunarlander-ppo",
            f"{r}/lunarlander-ppo.yaml",
            "PPO on LunarLander-v3 (box2d), rl-baselines3-zoo settings, 1e6 steps: mean return >= 200",
            targets=("eval/return_mean >= 200", "train/env_steps <= 1000000"),
        ),
    ]


@hookimpl
def engine_add_commands(subparsers: CommandSink) -> None:
    p = subparsers.add_parser(
        "rl",
        help="reinforcement-learning helpers (gymnasium environments)",
        description="Reinforcement-learning helpers. Train with `engine run rl/cartpole-ppo`, "
        "evaluate with `engine evaluate RUN episodes=100`.",
        epilog="train:     engine run rl/cartpole-ppo          (recipes: engine components list --kind recipe 'rl/*')\n"
        "evaluate:  engine evaluate RUN episodes=100 seed=0\n"
        "deploy:    engine deploy RUN --target onnx",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    sub = p.add_subparsers(dest="rl_command", metavar="COMMAND")
    envs = sub.add_parser(
        "envs",
        help="list registered gymnasium environment ids",
        description="List the gymnasium environment ids usable as data.env_id, optionally with their spaces.",
    )
    envs.add_argument("pattern", nargs="?", help="glob or substring to filter ids, e.g. 'cart' or '*-v1'")
    envs.add_argument("--spaces", action="store_true", help="also make each environment and show its spaces")
    envs.set_defaults(handler="engine_rl.cli:envs")
