"""`ft version`."""

from __future__ import annotations

import typer


def version() -> None:
    """Print the version of every ft package (or 'not installed').

    Example: ft version
    """
    from ft_core import package_report

    for row in package_report():
        typer.echo(f"{row.name:<10} {row.version or 'not installed'}")
