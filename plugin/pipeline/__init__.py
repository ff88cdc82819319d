"""The background pipeline: webhook events, backfill, reconciliation, privacy and purge."""
