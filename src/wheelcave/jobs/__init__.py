"""Maintenance jobs: integrity check (and later gc, prefetch)."""
