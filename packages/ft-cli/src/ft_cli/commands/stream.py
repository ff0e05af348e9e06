"""`ft stream split|generate|bench`: run models larger than memory, one layer at a time."""

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

app = typer.Typer(help="Layer-streaming inference: models larger than memory.", no_args_is_help=True)

MODEL_HELP = "Alias, model folder, .gguf, hub id or a split folder [default: smollm2-135m-instruct]."
DTYPE_HELP = "auto (as ft chat: bf16 on capable GPUs, else float32), keep (as stored), float32, bfloat16, float16."


def _dtype(name: str):
    if name == "keep":
        return None
    from ft_models import resolve_dtype

    return resolve_dtype(name)


COMPRESS_HELP = ("Store the decoder layers compressed: int8 (a scale per output row, 0.5x the bytes to read) or "
                 "nf4 (4-bit NormalFloat, an absmax per 64 weights, 0.28x).")


DEVICE_HELP = "auto (the GPU where there is one), cpu, cuda or cuda:N."
GPU_BUDGET_HELP = "GPU memory for weights, KV cache and buffers, e.g. 4GiB [default: 90% of what is free]."
CPU_BUDGET_HELP = "On a GPU: pinned RAM for layers, e.g. 16GB [default: half the available RAM]."


def _open(model: str | None, budget: str | None, dtype: str, prefetch: int, compress: str | None = None,
          device: str = "auto", gpu_budget: str | None = None, cpu_budget: str | None = None):
    from ft_models import DEFAULT_MODEL
    from ft_stream import LayerwiseModel

    return LayerwiseModel.from_source(model or DEFAULT_MODEL, budget=budget, dtype=_dtype(dtype), prefetch=prefetch,
                                      progress=True, compress=compress, device=device, gpu_budget=gpu_budget,
                                      cpu_budget=cpu_budget)


@app.command("split")
@friendly("stream split")
def split_command(
    model: str = typer.Argument(None, help=MODEL_HELP),
    out: str = typer.Argument(None, help="Output folder [default: under $FT_HOME/stream]."),
    dtype: str = typer.Option("keep", help=DTYPE_HELP),
    compress: str = typer.Option(None, help=COMPRESS_HELP + " [choices: int8, nf4]"),
    force: bool = typer.Option(False, "--force", help="Replace OUT even if it holds files ft did not write."),
) -> None:
    """Split MODEL into one safetensors file per decoder layer with a checksummed manifest.

    Example: ft stream split smollm2-135m-instruct --compress int8
    """
    from ft_models import DEFAULT_MODEL
    from ft_stream import split

    folder = split(model or DEFAULT_MODEL, out, dtype=_dtype(dtype), compress=compress, force=force)
    typer.echo(str(folder))


@app.command("generate")
@friendly("stream generate")
def generate(
    model: str = typer.Argument(None, help=MODEL_HELP),
    prompt: str = typer.Option(..., "--prompt", "-p", help="The user message."),
    budget: str = typer.Option(None, help="Memory for weights, e.g. 2GB [default: stream every layer]."),
    system: str = SYSTEM,
    max_new_tokens: int = MAX_NEW_TOKENS,
    temperature: float = TEMPERATURE,
    top_p: float = TOP_P,
    repetition_penalty: float = REPETITION_PENALTY,
    stop: list[str] = STOP,
    dtype: str = typer.Option("auto", help=DTYPE_HELP),
    prefetch: int = typer.Option(1, help="Layers read ahead on a background thread."),
    compress: str = typer.Option(None, help=COMPRESS_HELP + " Used when MODEL is split here [choices: int8, nf4]."),
    device: str = typer.Option("auto", help=DEVICE_HELP),
    gpu_budget: str = typer.Option(None, help=GPU_BUDGET_HELP),
    cpu_budget: str = typer.Option(None, help=CPU_BUDGET_HELP),
) -> None:
    """Answer PROMPT with MODEL streamed under BUDGET (same options and text as `ft chat`).

    Example: ft stream generate smollm2-135m-instruct -p "Hi" --budget 200MB
    """
    from transformers import AutoTokenizer
    from transformers.utils import logging as hf_logging

    from ft_models import ChatModel

    hf_logging.disable_progress_bar()
    streamed = _open(model, budget, dtype, prefetch, compress, device, gpu_budget, cpu_budget)
    options = generation_options(max_new_tokens, temperature, top_p, repetition_penalty, stop)
    chat = ChatModel(AutoTokenizer.from_pretrained(streamed.folder), streamed.model, options)
    typer.echo(chat.reply(opening(system, prompt)))
    streamed.close()


@app.command("bench")
@friendly("stream bench")
def bench(
    model: str = typer.Argument(None, help=MODEL_HELP),
    budget: str = typer.Option(None, help="Memory for weights, e.g. 2GB [default: stream every layer]."),
    prompt_tokens: int = typer.Option(100, help="Prompt length for the prefill."),
    new_tokens: int = typer.Option(20, help="Greedy tokens to time."),
    dtype: str = typer.Option("keep", help=DTYPE_HELP),
    prefetch: int = typer.Option(1, help="Layers read ahead on a background thread."),
    compare: bool = typer.Option(False, help="Also time the model fully in memory (it must fit)."),
    compress: str = typer.Option(None, help=COMPRESS_HELP + " Used when MODEL is split here [choices: int8, nf4]."),
    device: str = typer.Option("auto", help=DEVICE_HELP),
    gpu_budget: str = typer.Option(None, help=GPU_BUDGET_HELP),
    cpu_budget: str = typer.Option(None, help=CPU_BUDGET_HELP),
) -> None:
    """Prefill time, seconds per token and peak memory of MODEL streamed under BUDGET.

    Example: ft stream bench smollm2-135m-instruct --budget 150MB --compare
    """
    import torch

    from ft_stream.bench import time_generation

    streamed = _open(model, budget, dtype, prefetch, compress, device, gpu_budget, cpu_budget)
    torch.manual_seed(0)
    ids = torch.randint(10, streamed.config.vocab_size, (1, prompt_tokens)).to(streamed.device)
    streamed.forward(ids[:, :2])  # the first pass reads and checks every file
    result = time_generation(streamed.model, ids, new_tokens)
    typer.echo(f"streamed ({len(streamed.resident)}/{len(streamed.layers)} layers resident): {result.summary()}")
    streamed.close()
    if compare:
        from transformers import AutoModelForCausalLM

        from ft_models import model_path

        source = model_path(streamed.manifest.get("source_path") or streamed.manifest["source"])
        plain = AutoModelForCausalLM.from_pretrained(source, dtype=streamed.dtype).eval().to(streamed.device)
        baseline = time_generation(plain, ids, new_tokens)
        typer.echo(f"in memory: {baseline.summary()}")
        typer.echo(f"ratio: prefill {result.prefill_s / baseline.prefill_s:.2f}x, "
                   f"per token {result.s_per_token / baseline.s_per_token:.2f}x; "
                   f"same tokens: {'yes' if result.tokens == baseline.tokens else 'NO'}")
