"""`ft chat`: one-shot with --prompt, interactive without."""

from __future__ import annotations

import typer

from ft_cli._errors import friendly
from ft_cli.commands._generation import (
    MAX_NEW_TOKENS,
    REPETITION_PENALTY,
    STOP,
    SYSTEM,
    TEMPERATURE,
    TOP_P,
    generation_options,
    opening,
)
from ft_cli.commands._runs import base_of


def _loop(chat, system: str | None) -> None:
    start = opening(system)
    conversation = list(start)
    typer.echo("type a message; /reset clears the conversation, /exit quits")
    while True:
        try:
            text = input("you> ").strip()
        except EOFError:
            return
        if text in ("/exit", "/quit"):
            return
        if text == "/reset":
            conversation = list(start)
            continue
        if not text:
            continue
        conversation.append({"role": "user", "content": text})
        answer = chat.reply(conversation)
        conversation.append({"role": "assistant", "content": answer})
        typer.echo(f"assistant> {answer}")


def _streamed_chat(model: str, adapter: str | None, budget: str, options):
    from transformers import AutoTokenizer

    from ft_core import FtError
    from ft_models import ChatModel
    from ft_stream import LayerwiseModel

    if adapter:
        raise FtError("--stream-budget streams a plain model; merge the adapter first (`ft export "
                      f"{adapter} --out OUT`) and chat with OUT")
    streamed = LayerwiseModel.from_source(model, budget=budget, progress=True)  # on a GPU: its GPU budget
    return ChatModel(AutoTokenizer.from_pretrained(streamed.folder), streamed.model, options)


@friendly("chat")
def chat(
    model: str = typer.Option(None, "--model", "-m", help="Alias, folder, .gguf or hub id [default: the adapter's "
                              "base if its run says, else smollm2-135m-instruct]."),
    adapter: str = typer.Option(None, "--adapter", "-a", help="A trained adapter folder (e.g. OUTPUT_DIR/adapter)."),
    prompt: str = typer.Option(None, "--prompt", "-p", help="Answer this one message and exit."),
    system: str = SYSTEM,
    max_new_tokens: int = MAX_NEW_TOKENS,
    temperature: float = TEMPERATURE,
    top_p: float = TOP_P,
    repetition_penalty: float = REPETITION_PENALTY,
    stop: list[str] = STOP,
    stream_budget: str = typer.Option(None, help="Stream the model one layer at a time within this memory, e.g. "
                                      "2GB (ft-stream: for models larger than memory; on a GPU, its GPU budget)."),
) -> None:
    """Chat with a model, optionally with a trained adapter.

    Example: ft chat -p "What is the capital of France?"
    """
    from transformers.utils import logging as hf_logging

    from ft_models import ChatModel

    hf_logging.disable_progress_bar()  # loading bars would interleave with the conversation
    options = generation_options(max_new_tokens, temperature, top_p, repetition_penalty, stop)
    if stream_budget is not None:
        session = _streamed_chat(model or base_of(adapter), adapter, stream_budget, options)
    else:
        session = ChatModel.load(model or base_of(adapter), adapter=adapter, options=options)
    if prompt is None:
        _loop(session, system)
        return
    typer.echo(session.reply(opening(system, prompt)))
