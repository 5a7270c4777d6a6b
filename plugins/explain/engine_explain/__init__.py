"""engine-explain: attributions and attention maps for engine runs (Captum)."""

__version__ = "0.1.0"
