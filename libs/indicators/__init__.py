"""Market indicators shared by services (pure functions over Decimal)."""
