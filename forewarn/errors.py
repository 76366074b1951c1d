"""Forewarn's exception tree; the API maps it to HTTP 4xx/503 in one place.

ForewarnError
 ├── ConfigError        a setting has a bad value (names the variable)
 ├── ContractError      a message broke the contract (has a reason code)
 ├── StorageError       the database refused or is unreachable
 │    └── StorageUnavailable
 ├── ModelError         no model, or a model cannot score
 ├── NotFound           an id that does not exist
 │    └── DatasetNotFoundError  a public dataset is not where we were told to look
 ├── InputError         a file or request the user supplied is invalid (names row and field)
 └── Conflict           a state change that is not allowed now
"""

from __future__ import annotations


class ForewarnError(Exception):
    """Base of every error Forewarn raises on purpose."""


class ConfigError(ForewarnError):
    def __init__(self, variable: str, message: str) -> None:
        super().__init__(f"{variable}: {message}")
        self.variable = variable
        self.message = message


class ContractError(ForewarnError):
    """A message that breaks the contract; ``reason`` is a stable code stored with the dead letter."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


class StorageError(ForewarnError):
    pass


class StorageUnavailable(StorageError):
    """The database cannot be reached or is read-only; retry later."""


class ModelError(ForewarnError):
    pass


class NotFound(ForewarnError):
    pass


class Conflict(ForewarnError):
    pass


class InputError(ForewarnError):
    """A file or request the user supplied is invalid; the message names the row and field."""


class DatasetNotFoundError(NotFound, FileNotFoundError):
    """A benchmark dataset is not where we were told to look (also a FileNotFoundError)."""
