"""engine-recsys: recommender systems for engine (no torch import here)."""

__version__ = "0.1.0"
