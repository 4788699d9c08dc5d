"""Position monitor: P&L, stop loss, 7-DTE exits, broker sync, attention alerts."""
