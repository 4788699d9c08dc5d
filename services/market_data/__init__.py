"""Market data: TastyTrade DXLink quotes, Bollinger bands, stale-data detection."""
