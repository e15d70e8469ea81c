"""Serving: the sans-I/O protocol, the engine (settings -> policies, model work), the websocket server, the supervisor."""
