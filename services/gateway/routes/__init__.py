"""The REST routes, one module per concern; `services.gateway.app` mounts them."""
