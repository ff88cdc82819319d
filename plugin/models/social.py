"""Storage models (being written)."""
