"""Config checks without gymnasium, numpy or torch, and the spaces of gymnasium's own environments as plain data.

``engine run --dry-run`` checks a config through ``rl.gym``'s ``check`` (`check_gym`), which must
stay fast: importing gymnasium costs most of a second, so the common case (one of gymnasium's
own ids) is answered from this table. Each value is two letters: the observation space then the
action space, ``d`` for Discrete, ``b`` for Box, ``o`` for anything else. Ids not listed here
(third-party environments, a typo) fall back to gymnasium's registry; the data source checks
everything again when it makes the environment.
"""

from __future__ import annotations

from typing import Any

from engine import ConfigError

#: gymnasium 1.x ids -> observation/action kinds (read from gymnasium 1.4.0; MuJoCo/Box2D from their docs)
KNOWN_ENVS: dict[str, str] = {
    "Acrobot-v1": "bd",
    "Blackjack-v1": "od",
    "CartPole-v0": "bd",
    "CartPole-v1": "bd",
    "CliffWalking-v1": "dd",
    "CliffWalkingSlippery-v1": "dd",
    "FrozenLake-v1": "dd",
    "FrozenLake8x8-v1": "dd",
    "MountainCar-v0": "bd",
    "MountainCarContinuous-v0": "bb",
    "Pendulum-v1": "bb",
    "Taxi-v4": "dd",
    # Box2D (gymnasium[box2d]); LunarLander and CarRacing switch action spaces with env_kwargs.continuous
    "LunarLander-v3": "bd",
    "LunarLanderContinuous-v3": "bb",
    "BipedalWalker-v3": "bb",
    "BipedalWalkerHardcore-v3": "bb",
    "CarRacing-v3": "bb",
    # MuJoCo (gymnasium[mujoco]): vector observations, continuous actions
    **{
        f"{name}-v{v}": "bb"
        for name in (
            "Ant",
            "HalfCheetah",
            "Hopper",
            "Humanoid",
            "HumanoidStandup",
            "InvertedDoublePendulum",
            "InvertedPendulum",
            "Pusher",
            "Reacher",
            "Swimmer",
            "Walker2d",
        )
        for v in (4, 5)
    },
}

#: keyword arguments that change an environment's spaces (the table is not trusted when one is given)
SPACE_KWARGS = ("continuous",)


def known_kinds(env_id: str, env_kwargs: dict[str, Any] | None = None) -> tuple[str, str] | None:
    """``(observation kind, action kind)`` of a gymnasium id from the table, or None when unknown here."""
    kinds = KNOWN_ENVS.get(env_id)
    if kinds is None or any(k in (env_kwargs or {}) for k in SPACE_KWARGS):
        return None
    return kinds[0], kinds[1]


def check_task_fits(task: str, facts: dict[str, Any]) -> None:
    """Raise a `ConfigError` when task ``task`` (qualified name) cannot handle the environment's spaces."""
    env_id = facts.get("env_id") or "the environment"
    if task in ("rl.q_learning", "rl.dqn") and facts.get("action_discrete") is None:
        raise ConfigError(
            f"task {task} needs discrete actions, but {env_id} has continuous actions",
            hint="use task=rl.ppo (policy=rl.mlp_policy) for continuous actions",
        )
    if task == "rl.q_learning" and facts.get("observation_discrete") is None:
        raise ConfigError(
            f"task rl.q_learning is tabular and needs discrete observations, but {env_id} has continuous observations",
            hint="use task=rl.dqn or task=rl.ppo for continuous observations",
        )


def check_config(config: dict[str, Any]) -> None:
    """Check an ``rl.gym`` run's environment id and task/space fit on the composed config (dry-run included).

    Names in ``config`` are qualified (the core resolves them before plugins see the config).
    Gymnasium's own ids are answered from `KNOWN_ENVS` (no import); any other id is looked up
    in gymnasium's registry (importing gymnasium, slower) so a typo gets its did-you-mean.
    """
    data = config["data"]
    env_id = data.get("env_id", "CartPole-v1")
    if not isinstance(env_id, str):
        raise ConfigError(f"data.env_id must be a gymnasium id (a string), got {env_id!r}")
    kwargs = data.get("env_kwargs") if isinstance(data.get("env_kwargs"), dict) else {}
    kinds = known_kinds(env_id, kwargs)
    if kinds is None:
        if env_id in KNOWN_ENVS:
            return  # env_kwargs change its spaces: checked when the environment is made
        from engine_rl.spaces import check_env_id  # imports gymnasium: only for ids outside the table

        check_env_id(env_id)
        return
    if kinds[0] == "o":
        raise ConfigError(
            f"the observation space of {env_id} is not supported",
            hint="rl.gym handles Discrete and Box observations; flatten others with a gymnasium wrapper",
        )
    task = config["task"]["name"]
    if task in ("rl.q_learning", "rl.dqn"):
        check_task_fits(
            task,
            {
                "env_id": env_id,
                "observation_discrete": 1 if kinds[0] == "d" else None,
                "action_discrete": 1 if kinds[1] == "d" else None,
            },
        )
    if kinds[0] == "d" and data.get("normalize_observation") is True:
        raise ConfigError(
            f"{env_id} has discrete observations: they cannot be normalised",
            hint="set data.normalize_observation=false",
        )


def check_gym(values: dict[str, Any], where: str, config: dict[str, Any]) -> dict[str, Any]:
    """``rl.gym``'s plan-time check (``Component(check=...)``), at ``--dry-run`` too, before anything is built.

    A typo in ``data.env_id`` (with a did-you-mean) or a task that cannot handle the environment's
    spaces (tabular Q-learning on continuous observations, DQN on continuous actions) is reported
    here. The environment follows the run's seed unless ``data.seed`` is set, and a periodic
    evaluation (``task.eval_every``) sets ``checkpoint.every_n_train_steps`` to the same value
    unless that is set, so the best checkpoint is an evaluated one.
    """
    check_config({**config, where: {"name": "rl.gym", **values}})
    values = dict(values)
    if values.get("seed") is None:
        values["seed"] = config["seed"]
    every = (config.get("task") or {}).get("eval_every")
    checkpoint = config.get("checkpoint")
    if isinstance(every, int) and every > 0 and isinstance(checkpoint, dict):
        if checkpoint.get("every_n_train_steps") is None:
            checkpoint["every_n_train_steps"] = every
    return values
