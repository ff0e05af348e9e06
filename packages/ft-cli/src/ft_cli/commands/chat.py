"""`ft chat`: one-shot with --prompt, interactive without."""

from __future__ import annotations

import typer

from ft_cli._errors import friendly
from ft_cli.commands._generation import (
    DEVICE,
    DTYPE,
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

HELP = ('type a message; end a line with \\ to continue it, or put """ on a line of its own to open and close a '
        "block of several lines; /reset clears the conversation, /exit quits")


def read_message(read=input) -> str | None:
    """One user message from the terminal: a line; lines ending in a backslash continue; a line
    that is just \"\"\" opens a block closed by another. None at the end of input."""
    try:
        line = read("you> ")
    except EOFError:
        return None
    if line.strip() == '"""':
        lines = []
        while (more := _read_or_end(read, "...> ")) is not None and more.strip() != '"""':
            lines.append(more)
        return "\n".join(lines)
    lines = [line]
    while lines[-1].endswith("\\"):
        lines[-1] = lines[-1][:-1]
        if (more := _read_or_end(read, "...> ")) is None:
            break
        lines.append(more)
    return "\n".join(lines)


def _read_or_end(read, prompt: str) -> str | None:
    try:
        return read(prompt)
    except EOFError:
        return None


class _Printer:
    """Pieces of an answer echoed as they come, without its leading and trailing whitespace, so the
    printed text is the stripped answer that ``reply`` returns."""

    def __init__(self):
        self.started, self.pending = False, ""

    def __call__(self, piece: str) -> None:
        text = self.pending + piece
        if not self.started:
            text = text.lstrip()
            if not text:
                return
            self.started = True
        body = text.rstrip()
        self.pending = text[len(body):]
        if body:
            typer.echo(body, nl=False)


def _say(chat, conversation, prefix: str = "") -> str:
    """The answer, printed as it is generated, then a newline."""
    typer.echo(prefix, nl=False)
    answer = chat.reply(conversation, on_text=_Printer())
    typer.echo()
    return answer


def _loop(chat, system: str | None) -> None:
    start = opening(system)
    conversation = list(start)
    typer.echo(HELP)
    while (text := read_message()) is not None:
        text = text.strip()
        if text in ("/exit", "/quit"):
            return
        if text == "/reset":
            conversation = list(start)
            continue
        if not text:
            continue
        conversation.append({"role": "user", "content": text})
        conversation.append({"role": "assistant", "content": _say(chat, conversation, "assistant> ")})


def _streamed_chat(model: str, adapter: str | None, budget: str, options, device: str = "auto", dtype: str = "auto"):
    from transformers import AutoTokenizer

    from ft_core import FtError
    from ft_models import ChatModel, resolve_dtype
    from ft_stream import LayerwiseModel

    if adapter:
        raise FtError("--stream-budget streams a plain model; merge the adapter first (`ft export "
                      f"{adapter} --out OUT`) and chat with OUT")
    streamed = LayerwiseModel.from_source(model, budget=budget, progress=True, device=device,  # on a GPU: its GPU budget
                                          dtype=None if dtype == "auto" else resolve_dtype(dtype))
    return ChatModel(AutoTokenizer.from_pretrained(streamed.folder), streamed.model, options)




def load_session(model: str | None, adapter: str | None, stream_budget: str | None, options, device: str = "auto",
                 dtype: str = "auto"):
    """The ChatModel `ft chat` and `ft serve` talk to: loaded whole, with its adapter, or streamed."""
    from ft_models import ChatModel

    if stream_budget is not None:
        return _streamed_chat(model, adapter, stream_budget, options, device, dtype)
    return ChatModel.load(model, adapter=adapter, options=options, device=device, dtype=dtype)


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
    device: str = DEVICE,
    dtype: str = DTYPE,
) -> None:
    """Chat with a model, optionally with a trained adapter.

    Example: ft chat -p "What is the capital of France?"
    """
    from transformers.utils import logging as hf_logging

    hf_logging.disable_progress_bar()  # loading bars would interleave with the conversation
    options = generation_options(max_new_tokens, temperature, top_p, repetition_penalty, stop)
    session = load_session(model or base_of(adapter), adapter, stream_budget, options, device, dtype)
    if prompt is None:
        _loop(session, system)
        return
    _say(session, opening(system, prompt))
