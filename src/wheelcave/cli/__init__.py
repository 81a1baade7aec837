"""The ``wheelcave`` command (typer): parse, call a service, print."""
