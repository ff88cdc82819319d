"""The sandbox site: a Jira + Confluence Cloud site over real HTTP serving sandbox/data.

Tests start one per test; `inflow demo` runs one as its own process (`python -m sandbox.site`).
"""
