"""Kernel layer 5 (private): the ``engine`` command — parser assembly, dispatch, the core's handlers."""
