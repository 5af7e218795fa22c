"""Exceptions that carry a message meant for the user, naming the input at fault."""

from __future__ import annotations


class VlmSafetyError(Exception):
    """Base class: the message says what was wrong and what to do about it."""


class ConfigError(VlmSafetyError):
    """A bad option value, unknown model, suite or judge name. Shown as a pytest usage error."""


class DataError(VlmSafetyError):
    """A missing dataset folder or file, or a malformed row in a benchmark's data."""


class ItemError(VlmSafetyError):
    """One item cannot be run (missing or corrupt image, no recorded response...).

    Only that item becomes an error; the rest of the run goes on.
    """
