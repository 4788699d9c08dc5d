"""The Senex services, each its own process: ``python -m services.<name>``."""
