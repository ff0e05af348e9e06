"""`ft train CONFIG`."""

from __future__ import annotations

from pathlib import Path

import typer

from ft_cli._errors import friendly


@friendly("train")
def train(config: Path = typer.Argument(..., help="YAML run config (sections model, data, adapter, train).")) -> None:
    """Train a model as the YAML run config says; re-running resumes from the last checkpoint."""
    from ft_train import run_training

    result = run_training(config)
    loss = f"{result.final_loss:.4f}" if result.final_loss is not None else "n/a"
    typer.echo(f"done: final loss {loss}")
    typer.echo(f"weights:  {result.weights_dir}")
    typer.echo(f"metrics:  {result.metrics_file}")
    typer.echo(f"plot:     {result.plot_file}")
