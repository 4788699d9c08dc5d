"""The WebSocket ``/ws``: protocol, throttles, the bus fan-out and one connection each."""
