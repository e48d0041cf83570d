"""Orders, tariffs, payments, refunds and the daily reconciliation with the providers: pure rules plus
store calls, fed by transaction events."""
