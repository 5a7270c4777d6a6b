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

Layout: ``common`` (the ``RLTask`` base, ``run_episodes``, ``linear_schedule``,
``GreedyEvaluation``), ``qlearning`` (``QLearning``), ``dqn`` (``ReplayBuffer``, ``DQN``)
and ``ppo`` (``PPO``). Import from the defining module, e.g. ``engine_rl.tasks.dqn:DQN``.
"""
