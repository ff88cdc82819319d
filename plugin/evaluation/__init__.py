"""Offline evaluation: replay real Jira history through the app's own ingestion and ranking."""
