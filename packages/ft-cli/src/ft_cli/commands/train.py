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
    convert: bool = typer.Option(False, "--convert", help="Print a LLaMA-Factory YAML as ft's run config; train nothing."),
) -> None:
    """Train a model as the YAML run config (ours or LLaMA-Factory's) says; re-running resumes from
    the last complete checkpoint."""
    from ft_core import FtError
    from ft_train import run_training

    if convert:
        typer.echo(_converted(config), nl=False)
        return
    if resume and restart:
        raise FtError("--resume and --restart exclude each other: pick one")
    result = run_training(config, rerun="resume" if resume else "restart" if restart else "auto")
    loss = f"{result.final_loss:.4f}" if result.final_loss is not None else "n/a"
    typer.echo(f"done: final loss {loss}")
    typer.echo(f"weights:  {result.weights_dir}")
    typer.echo(f"metrics:  {result.metrics_file}")
    typer.echo(f"plot:     {result.plot_file}")


def _converted(path: Path) -> str:
    import yaml

    from ft_core import FtError
    from ft_train.config import read_yaml
    from ft_train.llamafactory import convert, is_llamafactory

    raw = read_yaml(path)
    if not is_llamafactory(raw):
        raise FtError(f"{path} is not a LLaMA-Factory training YAML (no model_name_or_path); nothing to convert")
    converted = convert(raw, path)
    head = f"# ft run config converted from {path}\n"
    head += "".join(f"# ignored: {item}\n" for item in converted.ignored)
    return head + yaml.safe_dump(converted.config, sort_keys=False)
