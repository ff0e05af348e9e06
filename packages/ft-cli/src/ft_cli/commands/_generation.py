"""The generation options `ft chat`, `ft serve` and `ft stream generate` share: one definition, one
default, so the commands give the same text for the same model and prompt; and where a model
computes (DEVICE also serves `ft export`)."""

from __future__ import annotations

import typer

SYSTEM = typer.Option(None, "--system", help="System prompt.")
MAX_NEW_TOKENS = typer.Option(256, help="Most tokens to generate.")
TEMPERATURE = typer.Option(0.0, help="0 is greedy decoding.")
TOP_P = typer.Option(1.0, help="Nucleus sampling (with temperature > 0).")
REPETITION_PENALTY = typer.Option(1.0, help="1.0 is none.")
STOP = typer.Option([], "--stop", help="End the answer at this string (repeatable).")
DEVICE = typer.Option("auto", help="Where the model computes: auto (the GPU where there is one), cpu, cuda, cuda:N.")
DTYPE = typer.Option("auto", help="Compute dtype: auto (bfloat16 on a GPU that has it, else float32; streamed: as split), "
                     "float32, bfloat16, float16.")


def generation_options(max_new_tokens: int, temperature: float, top_p: float, repetition_penalty: float,
                       stop: list[str]):
    from ft_models import GenerationOptions

    return GenerationOptions(max_new_tokens, temperature, top_p, repetition_penalty, tuple(stop))


def opening(system: str | None, prompt: str | None = None) -> list[dict[str, str]]:
    """A conversation: the system prompt, if any, then the user's message, if any."""
    return ([{"role": "system", "content": system}] if system else []) + \
        ([{"role": "user", "content": prompt}] if prompt is not None else [])
