"""Shared libraries: contracts (vocabulary), runtime, event log and the CLI."""
