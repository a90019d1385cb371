"""Sinks: consumers that keep the stream's results in other systems (PostgreSQL)."""
