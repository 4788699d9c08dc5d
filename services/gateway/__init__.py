"""Gateway: authenticated REST and WebSocket API over the event bus."""
