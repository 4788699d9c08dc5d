"""Execution: limit orders that never double, fills, automatic exits."""
