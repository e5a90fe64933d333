"""The event log (outbox) and its fan-out."""
