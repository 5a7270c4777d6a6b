"""engine-privacy: differentially private training (DP-SGD, Opacus) for engine runs."""

__version__ = "0.1.0"
