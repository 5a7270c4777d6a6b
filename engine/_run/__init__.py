"""Kernel layer 4 (private): Plan -> objects -> ``Trainer.fit`` -> a run directory, and reopening runs."""
