"""What is installed: every ft package's version and its transformers range."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import metadata

from packaging.version import Version

from ft_core.version_guard import declared_range

FT_PACKAGES = ("ft-core", "ft-data", "ft-models", "ft-train", "ft-stream", "ft-cli")


@dataclass(frozen=True)
class PackageStatus:
    name: str
    version: str | None  # None: not installed
    transformers_range: str | None  # None: declares no range
    range_ok: bool | None  # None: nothing to check


def installed_version(dist: str) -> str | None:
    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def package_report() -> list[PackageStatus]:
    """Each ft package with its version, its transformers range and whether the installed one fits."""
    transformers = installed_version("transformers")
    rows = []
    for dist in FT_PACKAGES:
        version = installed_version(dist)
        spec = None
        if version is not None:
            try:
                spec = declared_range(dist)
            except LookupError:
                spec = None
        ok = None if spec is None or transformers is None else spec.contains(Version(transformers), prereleases=True)
        rows.append(PackageStatus(dist, version, str(spec) if spec is not None else None, ok))
    return rows
