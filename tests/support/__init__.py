"""Test helpers: build distributions on the fly, run servers and clients."""
