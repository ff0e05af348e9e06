"""`ft train CONFIG [--resume | --restart]`."""

from __future__ import annotations

from pathlib import Path

import typer

from ft_cli._errors import friendly


@friendly("train")
def train(
    config: Path = typer.Argument(..., help="YAML run config (sections model, data, adapter, train)."),
    resume: bool = typer.Option(False, "--resume", help="Continue the run in output_dir even though its settings changed."),
    restart: bool = typer.Option(False, "--restart", help="Remove the run in output_dir (checkpoints, results) and start over."),
) -> None:
    """Train a model as the YAML run config says; re-running resumes from the last complete checkpoint."""
    from ft_core import FtError
    from ft_train import run_training

    if resume and restart:
        raise FtError("--resume and --restart exclude each other: pick one")
    result = run_training(config, rerun="resume" if resume else "restart" if restart else "auto")
    loss = f"{result.final_loss:.4f}" if result.final_loss is not None else "n/a"
    typer.echo(f"done: final loss {loss}")
    typer.echo(f"weights:  {result.weights_dir}")
    typer.echo(f"metrics:  {result.metrics_file}")
    typer.echo(f"plot:     {result.plot_file}")
