"""``python -m engine`` is the ``engine`` command."""

from engine._cli.main import entrypoint

entrypoint()
