"""Errors raised by the pure core; all are ``ValueError`` subclasses.

ValueError
 └── CoreError
      ├── InvalidProjectName   a project name that is not a valid distribution name
      ├── InvalidIndexName     an index name outside ``[a-z0-9][a-z0-9._-]*``
      ├── InvalidFilename      an unsafe or unparsable distribution filename
      └── InvalidCoreMetadata  METADATA / PKG-INFO that does not parse or validate
"""


class CoreError(ValueError):
    """Base of the core's errors; ``str(err)`` is a one-line message for a user."""


class InvalidProjectName(CoreError):
    pass


class InvalidIndexName(CoreError):
    pass


class InvalidFilename(CoreError):
    pass


class InvalidCoreMetadata(CoreError):
    pass
