"""DQN's options against late-training collapse of the final policy (issue 37, item 9). Seconds each."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch


def _dqn(env_id: str = "CartPole-v1", num_envs: int = 1, **options: Any) -> tuple[Any, Any]:
    from engine_rl.envs import GymEnvironment
    from engine_rl.models import QNetwork
    from engine_rl.tasks.dqn import DQN

    dm = GymEnvironment(env_id, num_envs=num_envs, seed=0)
    dm.setup("fit")
    facts = dm.facts
    q = QNetwork(facts["in_features"], facts["num_actions"], facts["observation_discrete"], hidden=[8])
    return dm, DQN(q, torch.optim.Adam, None, facts["action_discrete"], **options)


def _fill(n_step: int, env_steps: int = 300) -> tuple[Any, Any]:
    dm, task = _dqn(
        n_step=n_step, total_env_steps=env_steps, learning_starts=env_steps, buffer_size=env_steps, gamma=0.5
    )
    for _ in task.experience(dm):  # random play only (learning_starts = the budget): fills the buffer
        pass
    dm.teardown("fit")
    return task, task.buffer


def test_n_step_stores_discounted_sums_and_bootstraps_n_steps_ahead() -> None:
    _, one = _fill(1)
    _, three = _fill(3)
    assert set(one.reward[: one.size]) == {1.0} and set(one.steps[: one.size]) == {1.0}
    n = three.size
    steps, reward, term = three.steps[:n], three.reward[:n], three.terminated[:n]
    # an episode's last transitions see its end 1 and 2 steps ahead: terminated, shorter sums, no bootstrap
    last = np.nonzero((term == 1) & (steps == 1))[0]
    assert len(last) >= 3 and (reward[last] == 1).all()
    assert (steps[last - 1] == 2).all() and reward[last - 1] == pytest.approx(1.5) and (term[last - 1] == 1).all()
    # the others: three rewards of 1 discounted by gamma 0.5, bootstrapping from the observation 3 steps later
    middle = np.nonzero(term == 0)[0]
    assert len(middle) > 100 and (steps[middle] == 3).all() and reward[middle] == pytest.approx(1.75)
    i = int(middle[0])
    assert np.array_equal(three.next_obs[i], three.obs[i + 3])
    assert one.size == 300 and 298 <= n <= 300  # the last pending windows (under n steps) are not stored


def test_n_step_target_discounts_by_gamma_to_the_steps(monkeypatch: pytest.MonkeyPatch) -> None:
    dm, task = _dqn(n_step=3, gamma=0.5)
    batch = {
        "obs": torch.zeros(2, 4),
        "next_obs": torch.zeros(2, 4),
        "action": torch.zeros(2, dtype=torch.long),
        "reward": torch.zeros(2),
        "terminated": torch.zeros(2),
        "steps": torch.tensor([1.0, 3.0]),
    }
    with torch.no_grad():
        for p in list(task.model.parameters()) + list(task.target.parameters()):
            p.zero_()
        task.model.net[-1].bias.fill_(8.0)
        task.target.net[-1].bias.fill_(8.0)
    seen: list[torch.Tensor] = []
    original = torch.nn.functional.smooth_l1_loss
    monkeypatch.setattr(torch.nn.functional, "smooth_l1_loss", lambda q, t: seen.append(t) or original(q, t))
    task.training_step(batch, 0)
    assert seen[0].tolist() == [4.0, 1.0]  # 0.5 * 8 and 0.5**3 * 8
    dm.teardown("fit")


def test_the_cartpole_recipe_uses_the_settings_measured_against_the_collapse() -> None:
    import engine

    config = engine.plan(engine.compose("rl/cartpole-dqn")).config  # torch-free, no training
    assert config["task"]["n_step"] == 3 and config["scheduler"]["name"] == "rl.linear"
    assert config["scheduler"].get("end_factor", 0.0) == 0.0  # the learning rate ends at 0 (docs/plugins/rl.md)
