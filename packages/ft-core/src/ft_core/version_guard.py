"""Check the installed transformers against the range a package declares in its metadata."""

from __future__ import annotations

import os
import warnings
from importlib import metadata

from packaging.requirements import Requirement
from packaging.specifiers import SpecifierSet
from packaging.version import Version

from ft_core.errors import FtVersionError

SKIP_ENV = "FT_SKIP_VERSION_CHECK"


def declared_range(dist: str, requirement: str = "transformers") -> SpecifierSet:
    """The version range that distribution ``dist`` requires for ``requirement``.

    Read from the installed package metadata, so pyproject.toml stays the one source of truth.
    """
    for line in metadata.requires(dist) or []:
        req = Requirement(line)
        if req.name == requirement and req.marker is None:
            return req.specifier
    raise LookupError(f"{dist} declares no {requirement} requirement")


def check_transformers(dist: str, installed: str | None = None) -> None:
    """Raise FtVersionError if the installed transformers is outside ``dist``'s range.

    ``FT_SKIP_VERSION_CHECK=1`` downgrades the error to a warning.
    """
    spec = declared_range(dist)
    installed = installed or metadata.version("transformers")
    if spec.contains(Version(installed), prereleases=True):
        return
    message = (
        f"{dist} supports transformers{spec} but transformers {installed} is installed; "
        f"run `pip install 'transformers{spec}'` "
        f"(or set {SKIP_ENV}=1 to try anyway)"
    )
    if os.environ.get(SKIP_ENV, "") not in ("", "0"):
        warnings.warn(message, RuntimeWarning, stacklevel=2)
        return
    raise FtVersionError(message)
