"""The root of the project's one error hierarchy.

Edge and cloud define their own subclasses (``edge.errors``, ``cloud.errors``) so
that a caller can catch ``AkitaError`` for anything this project raises on purpose.
"""


class AkitaError(Exception):
    """Base class for every error this project raises deliberately."""


class WireError(AkitaError):
    """A payload that does not match the wire contract.

    ``reason`` is a short, human-readable account that names the offending
    field and value; it is what lands in the dead-letter record.
    """

    def __init__(self, reason: str, *, field: str | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.field = field
