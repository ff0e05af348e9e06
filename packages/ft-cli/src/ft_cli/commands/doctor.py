"""`ft doctor`: versions, ranges, torch, device, and which attention works here."""

from __future__ import annotations

import typer

from ft_cli._errors import friendly


def _mark(ok: bool | None) -> str:
    return {True: "ok", False: "OUT OF RANGE", None: ""}[ok]


@friendly("doctor")
def doctor() -> None:
    """Report each ft package against the installed transformers, torch and the device.

    Example: ft doctor
    """
    from ft_core import installed_version, package_report

    typer.echo(f"transformers {installed_version('transformers') or 'not installed'}")
    for row in package_report():
        version = row.version or "not installed"
        wanted = f"transformers{row.transformers_range}" if row.transformers_range else ""
        typer.echo(f"  {row.name:<10} {version:<14} {wanted:<22} {_mark(row.range_ok)}".rstrip())
    try:
        from ft_models import attention_report, device_report
    except ModuleNotFoundError:
        typer.echo("install ft-models for the torch, device and attention report")
        return
    for key, value in device_report().items():
        typer.echo(f"{key}: {value}")
    typer.echo("attention:")
    for option in attention_report():
        typer.echo(f"  {option.name:<18} {'yes' if option.available else 'no ':<4} {option.reason}")
