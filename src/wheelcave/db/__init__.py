"""The metadata database: the only place with SQL."""
