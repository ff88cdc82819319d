"""The fault suite (`make soak`): a webhook burst while Redis, a worker or PostgreSQL fails."""
