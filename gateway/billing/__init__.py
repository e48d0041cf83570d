"""Orders, tariffs, payments and refunds: pure rules plus store calls, fed by transaction events."""
