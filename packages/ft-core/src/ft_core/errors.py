"""User-facing errors: one line that says where, what was found, and what to do."""

from __future__ import annotations

import difflib
from collections.abc import Iterable


class FtError(ValueError):
    """A mistake in the user's input (config, data, model name), not a bug in ft.

    The CLI prints these as one line without a traceback.
    """


class FtVersionError(ImportError, FtError):
    """The installed transformers is outside a package's supported range."""


def closest(name: str, choices: Iterable[str]) -> str | None:
    """The choice most similar to ``name``, or None if nothing is close."""
    found = difflib.get_close_matches(name, list(choices), n=1, cutoff=0.6)
    return found[0] if found else None


def did_you_mean(name: str, choices: Iterable[str]) -> str:
    """A ' (did you mean X?)' suffix for an error message, or '' if nothing is close."""
    match = closest(name, choices)
    return f" (did you mean '{match}'?)" if match else ""
