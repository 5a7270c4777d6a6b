"""engine-rl: reinforcement learning for engine."""
