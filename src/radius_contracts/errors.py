"""One error tree for the whole daemon; no HTTP and no pyrad types in here."""

from __future__ import annotations


class RadiusContractsError(Exception):
    """Root of every error the daemon raises on purpose.

    ``detail`` is a sentence fit for an operator; ``field`` names the offending input
    (a config key, a JSON field such as ``config.username``, a layout row) when there is one.
    """

    def __init__(self, detail: str, *, field: str | None = None) -> None:
        super().__init__(detail)
        self.detail = detail
        self.field = field


class NotFound(RadiusContractsError):
    """The addressed object does not exist."""


class Conflict(RadiusContractsError):
    """The change collides with existing data (duplicate key, object still in use)."""


class InvalidInput(RadiusContractsError):
    """Input that is well-formed JSON but breaks a domain rule."""


class InvalidLayout(InvalidInput):
    """A layout row names an unknown attribute or its template cannot render for it."""


class InvalidTransition(Conflict):
    """A contract status change that the status machine does not allow."""


class ConfigError(RadiusContractsError):
    """The configuration file or environment holds a bad value."""


class DictionaryError(RadiusContractsError):
    """A RADIUS dictionary file cannot be parsed; names the file and line."""

    def __init__(self, detail: str, *, file: str | None = None, line: int | None = None) -> None:
        where = f"{file}:{line}: " if file and line else (f"{file}: " if file else "")
        super().__init__(f"{where}{detail}")
        self.file = file
        self.line = line


class StorageUnavailable(RadiusContractsError):
    """The database cannot be reached right now."""
