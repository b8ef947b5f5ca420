"""Helpers for local runs and tests (not deployed)."""
