"""Matching: the per-tenant index, reuse suggestions and expert finding."""
