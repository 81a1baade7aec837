"""Route modules; each exposes ``routes`` (a list of Starlette routes)."""
