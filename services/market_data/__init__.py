"""Market data: TastyTrade DXLink quotes, Bollinger bands, stale-data detection."""

#: The service's name: its bus endpoint, the ``producer`` of its events, its metrics label.
SERVICE = "market_data"
