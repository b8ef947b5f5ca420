"""CCS-passive: everything that does work, importable without the Functions host.

Nothing in this package imports ``azure.functions``; the trigger modules in ``functions/``
adapt the host's payloads to the plain functions here.
"""
