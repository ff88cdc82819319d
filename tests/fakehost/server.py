"""bench/http.py and bench/backfill.py import FakeHost from here; it lives in sandbox/site/ now.

Delete this package once bench/ imports `sandbox.site.server` (bench is being rewritten apart).
"""
from __future__ import annotations

from sandbox.site.server import FakeHost

__all__ = ["FakeHost"]
