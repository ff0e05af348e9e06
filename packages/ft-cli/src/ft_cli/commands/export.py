"""`ft export`: merge a trained adapter into its base model and save it for inference."""

from __future__ import annotations

from pathlib import Path

import typer

from ft_cli._errors import friendly
from ft_cli.commands._generation import DEVICE
from ft_cli.commands._runs import base_of


@friendly("export")
def export(
    adapter: Path = typer.Argument(..., help="The adapter folder (a run's OUTPUT_DIR/adapter)."),
    out: Path = typer.Option(..., "--out", "-o", help="Folder for the merged model: new, empty or an earlier export."),
    base: str = typer.Option(None, "--base", "-b", help="Base model [default: the run's model.source]."),
    dtype: str = typer.Option("auto", help="Weights dtype: auto (the base checkpoint's own), float32, bfloat16, float16."),
    max_shard_size: str = typer.Option("2GB", help="Largest safetensors shard, e.g. 500MB."),
    force: bool = typer.Option(False, "--force", help="Replace --out even if it holds files ft did not write."),
    device: str = DEVICE,
) -> None:
    """Merge ADAPTER into its base and save safetensors, tokenizer, chat template, generation config.

    Example: ft export outputs/sft_lora_demo/adapter --out outputs/sft_lora_demo/merged
    """
    from ft_core import FtError
    from ft_models import merge_adapter

    base = base or base_of(adapter)
    if base is None:
        raise FtError(f"no run_config.yaml beside {adapter} to name the base model; pass --base")
    folder = merge_adapter(base, adapter, out, dtype=dtype, max_shard_size=max_shard_size, force=force,
                           device=device)
    typer.echo(f"merged {adapter} into {base}: {folder}")
