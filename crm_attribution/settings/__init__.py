"""Settings: the shipped defaults (defaults.toml), their typed validation and their fast path.

``typed`` validates defaults + config file + environment with pydantic; ``shipped`` reads the
defaults without pydantic for commands that start fast. This package imports neither, so that
importing one does not pay for the other.
"""
