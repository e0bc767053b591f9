"""eventsvc: a small events API on Flask + MongoDB, secrets from Vault."""

__version__ = "0.1.0"
