"""Kernel layer 1 (private): what a plugin may implement — hookspecs, declarations, events, protocols, errors.

Plugins use it through ``engine`` and ``engine.protocols``; see docs/architecture.md.
"""
