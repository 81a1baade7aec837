"""Talking to upstream indexes: the HTTP client and discovery of pip's default index."""
