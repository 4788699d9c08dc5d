"""Risk: budget, pre-trade checks and reservations."""
