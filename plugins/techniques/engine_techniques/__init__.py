"""engine-techniques: transfer learning, knowledge distillation and pruning for engine runs."""

__version__ = "0.1.0"
