"""The REST management API at ``/api/v1`` (FastAPI: the OpenAPI document is generated)."""
