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
    nproc: int | None = typer.Option(None, "--nproc", min=1, help="Training processes on this machine, started by "
                                     "torchrun (gloo on CPUs); --nproc 1 too, as DeepSpeed and FSDP need."),
    launcher_arg: list[str] = typer.Option([], "--launcher-arg", help="Passed to torchrun, e.g. --nnodes=2 (repeatable)."),
) -> None:
    """Train a model as the YAML run config (ours or LLaMA-Factory's) says; re-running resumes from
    the last complete checkpoint.

    Example: ft init sft && ft train ft-sft.yaml
    """
    from ft_core import FtError
    from ft_train import load_run_config

    if convert:
        from ft_train.llamafactory import converted_yaml

        typer.echo(converted_yaml(config), nl=False)
        return
    if resume and restart:
        raise FtError("--resume and --restart exclude each other: pick one")
    rerun = "resume" if resume else "restart" if restart else "auto"
    load_run_config(config, announce=False)  # a mistake is one line in about a second (before torch and TRL load)
    if nproc is not None or launcher_arg:  # without --nproc the run stays in this process
        from ft_train.launch import launch

        code = launch(config, nproc or 1, rerun=rerun, launcher_args=launcher_arg)
        raise typer.Exit(code)
    from ft_train import run_training

    result = run_training(config, rerun=rerun)
    loss = f"{result.final_loss:.4f}" if result.final_loss is not None else "n/a"
    typer.echo(f"done: final loss {loss}")
    typer.echo(f"weights:  {result.weights_dir}")
    typer.echo(f"metrics:  {result.metrics_file}")
    typer.echo(f"plot:     {result.plot_file}")

