"""Fake Atlassian host fixtures (being written)."""
