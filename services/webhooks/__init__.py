"""Webhooks: HTTP endpoints that receive the log's events, signed, in order, none lost."""
