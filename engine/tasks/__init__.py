"""LightningModule templates (tasks). The built-in one is :mod:`engine.tasks.supervised`."""
