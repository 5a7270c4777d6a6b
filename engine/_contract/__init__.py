"""Kernel layer 1 (private): what a plugin may implement; plugins use it through ``engine`` and ``engine.protocols``."""
