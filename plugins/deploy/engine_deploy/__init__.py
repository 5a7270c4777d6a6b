"""engine-deploy: deployment targets and the deploy / predict / serve commands (no torch import here)."""

__version__ = "0.1.0"
