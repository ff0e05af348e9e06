"""`ft model alias|aliases|unalias`: short names for model folders, .gguf files and hub ids."""

from __future__ import annotations

import typer

from ft_cli._errors import friendly

app = typer.Typer(help="Model aliases.", no_args_is_help=True)


@app.command("alias")
@friendly("model alias")
def alias(name: str = typer.Argument(..., help="The short name."),
          target: str = typer.Argument(..., help="A model folder, a .gguf file or a hub id.")) -> None:
    """Make NAME stand for TARGET wherever ft takes a model.

    Example: ft model alias demo outputs/sft_lora_demo/merged
    """
    from ft_models import register_alias

    typer.echo(f"{name} -> {register_alias(name, target)}")


@app.command("aliases")
@friendly("model aliases")
def aliases() -> None:
    """List the built-in and registered aliases.

    Example: ft model aliases
    """
    from ft_models import EMBEDDED_MODELS, user_aliases

    for name in EMBEDDED_MODELS:
        typer.echo(f"{name} (built in)")
    for name, target in sorted(user_aliases().items()):
        typer.echo(f"{name} -> {target}")


@app.command("unalias")
@friendly("model unalias")
def unalias(name: str = typer.Argument(..., help="A registered alias.")) -> None:
    """Forget a registered alias.

    Example: ft model unalias demo
    """
    from ft_models import remove_alias

    remove_alias(name)
    typer.echo(f"removed {name}")
