"""notifyd: webhooks in, a durable SQLite queue, deliveries out."""

__version__ = "0.1.0"
