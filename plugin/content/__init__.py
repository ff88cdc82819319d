"""Content model: Jira issues and Confluence pages normalised into one item shape."""
