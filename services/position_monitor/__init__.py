"""Position monitor: P&L, stop loss, 7-DTE exits, broker sync, attention alerts."""

#: The service's name: its bus endpoint, the ``producer`` of its events, its metrics label.
SERVICE = "position_monitor"
