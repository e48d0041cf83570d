"""The Trio side of chargers: admission and the handshake policy, one session task per charger, the
handlers of what chargers send, the commands operators send them, the registry and the watchdog."""
