"""`ft init STAGE`: a commented starter run config and its example data."""

from __future__ import annotations

from pathlib import Path

import typer

from ft_cli._errors import friendly

STAGES = "pt, sft, rm, dpo, orpo, kto, grpo, rloo, ppo"


@friendly("init")
def init(
    stage: str = typer.Argument("sft", help=f"The training stage: {STAGES}."),
    folder: Path = typer.Option(Path("."), "--dir", "-d", help="Where to write ft-STAGE.yaml and data/."),
    force: bool = typer.Option(False, "--force", help="Overwrite files that exist."),
) -> None:
    """Write a commented starter YAML for a stage, with example data, that trains as it is on the
    embedded model (a few minutes on a CPU).

    Example: ft init dpo && ft train ft-dpo.yaml
    """
    from ft_train.starters import write_starter

    path = write_starter(stage, folder, force=force)
    typer.echo(f"wrote {path} and its data; train it with: ft train {path}")
