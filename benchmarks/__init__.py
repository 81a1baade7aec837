"""Runnable performance comparisons (never timing assertions in the test suite)."""
