"""Trigger adapters: one blueprint per trigger, each a thin layer over ``shared_code``."""
