"""Audit: records every business event into the Postgres event log and answers audit queries."""
