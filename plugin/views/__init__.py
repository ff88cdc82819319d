"""Iframe pages the hosts load: Jira panels, admin tab, personal pages, Confluence macros, byline."""
