"""`ft serve`: an OpenAI-compatible API over a model, a model with an adapter, or a streamed model."""

from __future__ import annotations

import os

import typer

from ft_cli._errors import friendly
from ft_cli.commands._generation import (
    DEVICE,
    DTYPE,
    MAX_NEW_TOKENS,
    REPETITION_PENALTY,
    STOP,
    TEMPERATURE,
    TOP_P,
    generation_options,
)
from ft_cli.commands._runs import base_of


@friendly("serve")
def serve(
    model: str = typer.Argument(None, help="Alias, folder, .gguf or hub id [default: the adapter's base if its run "
                                "says, else smollm2-135m-instruct]."),
    adapter: str = typer.Option(None, "--adapter", "-a", help="A trained adapter folder (e.g. OUTPUT_DIR/adapter)."),
    stream_budget: str = typer.Option(None, help="Stream the model one layer at a time within this memory, e.g. "
                                      "2GB (ft-stream; on a GPU, its GPU budget)."),
    name: str = typer.Option(None, help="The model name clients send [default: the model's alias or folder name]."),
    host: str = typer.Option("127.0.0.1", help="Address to listen on (0.0.0.0: every interface; set an API key)."),
    port: int = typer.Option(8000, help="Port to listen on."),
    api_key: str = typer.Option(None, help="Require 'Authorization: Bearer KEY' on /v1/* [env: FT_API_KEY]."),
    max_new_tokens: int = MAX_NEW_TOKENS,
    temperature: float = TEMPERATURE,
    top_p: float = TOP_P,
    repetition_penalty: float = REPETITION_PENALTY,
    stop: list[str] = STOP,
    device: str = DEVICE,
    dtype: str = DTYPE,
) -> None:
    """Serve a model over an OpenAI-compatible HTTP API (/v1/chat/completions, /v1/completions,
    /v1/models, /health). The generation options are the defaults for requests that leave them out.

    Example: ft serve smollm2-135m-instruct --port 8000
    then: OpenAI(base_url="http://127.0.0.1:8000/v1", api_key="-").chat.completions.create(model="smollm2-135m-instruct", ...)
    """
    from pathlib import Path

    from ft_cli.commands.chat import load_session
    from ft_serve import Engine
    from ft_serve import serve as run_server

    source = model or base_of(adapter)
    options = generation_options(max_new_tokens, temperature, top_p, repetition_penalty, stop)
    session = load_session(source, adapter, stream_budget, options, device, dtype)
    served = name or (Path(source).name if source and Path(source).exists() else source or "smollm2-135m-instruct")
    key = api_key or os.environ.get("FT_API_KEY") or None
    where = f"serving {served!r} ({session.model.device}) on http://{host}:{port}/v1"
    typer.echo(where + (" (API key required)" if key else ""), err=True)
    run_server(Engine(session, name=served), host=host, port=port, api_key=key)
