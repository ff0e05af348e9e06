"""`ft chat`: one-shot with --prompt, interactive without."""

from __future__ import annotations

import typer

from ft_cli._errors import friendly


def _loop(chat, system: str | None) -> None:
    start = [{"role": "system", "content": system}] if system else []
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


@friendly("chat")
def chat(
    model: str = typer.Option(None, "--model", "-m", help="Alias, folder, .gguf or hub id [default: smollm2-135m-instruct]."),
    adapter: str = typer.Option(None, "--adapter", "-a", help="A trained adapter folder (e.g. OUTPUT_DIR/adapter)."),
    prompt: str = typer.Option(None, "--prompt", "-p", help="Answer this one message and exit."),
    system: str = typer.Option(None, "--system", help="System prompt."),
    max_new_tokens: int = typer.Option(256, help="Most tokens to generate."),
    temperature: float = typer.Option(0.0, help="0 is greedy decoding."),
    top_p: float = typer.Option(1.0, help="Nucleus sampling (with temperature > 0)."),
    repetition_penalty: float = typer.Option(1.0, help="1.0 is none."),
    stop: list[str] = typer.Option([], "--stop", help="End the answer at this string (repeatable)."),
) -> None:
    """Chat with a model, optionally with a trained adapter."""
    from transformers.utils import logging as hf_logging

    from ft_models import ChatModel, GenerationOptions

    hf_logging.disable_progress_bar()  # loading bars would interleave with the conversation
    options = GenerationOptions(max_new_tokens, temperature, top_p, repetition_penalty, tuple(stop))
    session = ChatModel.load(model, adapter=adapter, options=options)
    if prompt is None:
        _loop(session, system)
        return
    conversation = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": prompt}]
    typer.echo(session.reply(conversation))
