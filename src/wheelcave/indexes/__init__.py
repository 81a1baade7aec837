"""Indexes: one read interface, three kinds (hosted, mirror, virtual)."""
