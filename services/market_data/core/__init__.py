"""The market-data service's pure decisions: no I/O, no clock reads, plain values in and out.

The shell (the modules beside `core`, composed in `service`) feeds these with quotes,
candles, chains and balances and with the instants it read from the injected clock, and
acts on what they return (publish, subscribe, unsubscribe).
"""
