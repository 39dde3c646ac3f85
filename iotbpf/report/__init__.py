"""Reports: MQTT publishing with a durable outbox, plots and JSON/CSV export (CPython only)."""
