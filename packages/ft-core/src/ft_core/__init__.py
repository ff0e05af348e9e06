"""Shared base of the ft libraries; imports nothing heavy."""

from ft_core.atomic import atomic_dir, atomic_write_text, remove_stale_temps
from ft_core.errors import FtError, FtVersionError, closest, did_you_mean
from ft_core.files import check_file, read_text
from ft_core.output_dirs import MARKER, check_output_dir, made_by_ft
from ft_core.paths import ft_home
from ft_core.report import FT_PACKAGES, PackageStatus, installed_version, package_report
from ft_core.version_guard import check_transformers, declared_range

__all__ = [
    "FT_PACKAGES",
    "PackageStatus",
    "installed_version",
    "package_report",
    "FtError",
    "FtVersionError",
    "MARKER",
    "atomic_dir",
    "check_file",
    "check_output_dir",
    "read_text",
    "made_by_ft",
    "remove_stale_temps",
    "atomic_write_text",
    "check_transformers",
    "closest",
    "declared_range",
    "did_you_mean",
    "ft_home",
]
