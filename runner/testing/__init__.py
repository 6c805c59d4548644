"""Helpers for testing workflows and store adapters (needs the ``test`` extra)."""
