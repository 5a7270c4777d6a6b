"""``engine rl ...`` subcommands."""

from __future__ import annotations

import argparse
import fnmatch


def envs(args: argparse.Namespace) -> int:
    """List registered gymnasium environment ids with their spaces."""
    import warnings

    import gymnasium as gym

    warnings.filterwarnings("ignore")  # gymnasium warns about old versions (CartPole-v0 …)

    from engine import EngineError

    pattern = args.pattern or "*"
    if not any(ch in pattern for ch in "*?["):
        pattern = f"*{pattern}*"
    ids = sorted(i for i in gym.registry if fnmatch.fnmatch(i.lower(), pattern.lower()))
    if not ids:
        raise EngineError(
            f"no gymnasium environment matches '{args.pattern}'", hint="try `engine rl envs` without a pattern"
        )
    if not args.spaces:
        print("\n".join(ids))
        return 0
    from engine_rl.spaces import space_facts

    for env_id in ids:
        try:
            f = space_facts(env_id)
        except Exception as exc:  # an environment needing an extra (box2d, mujoco, atari)
            print(f"{env_id:40s} (cannot be made here: {str(exc).splitlines()[0][:80]})")
            continue
        obs = (
            f"Discrete({f['observation_discrete']})"
            if f["observation_discrete"]
            else f"Box{tuple(f['observation_shape'])}"
        )
        act = f"Discrete({f['action_discrete']})" if f["action_discrete"] else f"Box{tuple(f['action_shape'])}"
        print(f"{env_id:40s} observations {obs:16s} actions {act}")
    return 0
