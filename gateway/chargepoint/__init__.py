"""The Trio side of chargers: handshake policy, sessions, handlers and the registry."""
