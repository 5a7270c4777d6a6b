"""engine-sweep: hyperparameter sweeps over engine runs (Optuna, Ray Tune)."""
