"""`ft data preview | stats | validate`."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import typer

from ft_cli._errors import friendly

app = typer.Typer(help="Look at training data: preview, stats, validate.", no_args_is_help=True)

SOURCE_HELP = "A data file, or a dataset name from --registry."
REGISTRY = typer.Option(None, "--registry", "-r", help="A dataset registry (LLaMA-Factory's dataset_info.json works).")
FORMAT = typer.Option("auto", "--format", "-f", help="alpaca, sharegpt, openai, text or auto.")
MODEL = typer.Option(None, "--model", "-m", help="Whose tokenizer and chat template [default: smollm2-135m-instruct].")
TEMPLATE = typer.Option(None, "--template", help="A named template (chatml, llama3, alpaca, plain) instead of the tokenizer's.")


def _source(name: str, registry: Path | None, fmt: str):
    from ft_data import load_registry

    if registry is not None:
        specs = load_registry(registry)
        if name in specs:
            return specs[name]
    return (name, fmt)


def _tokenizer(model: str | None):
    from transformers.utils import logging as hf_logging

    from ft_models import DEFAULT_MODEL, load_tokenizer

    hf_logging.disable_progress_bar()
    return load_tokenizer(model or DEFAULT_MODEL)


@app.command()
@friendly("data preview")
def preview(source: str = typer.Argument(..., help=SOURCE_HELP),
            n: int = typer.Option(3, "-n", min=1, help="How many rows."),
            registry: Path = REGISTRY, format: str = FORMAT, model: str = MODEL, template: str = TEMPLATE) -> None:
    """Render the first rows as the model sees them; trained tokens in green (between [[ and ]] when
    the output is not a terminal or NO_COLOR is set).

    Example: ft data preview examples/identity/data/identity_train.jsonl -n 2
    """
    from ft_data.inspect import preview as render

    views = render(_tokenizer(model), _source(source, registry, format), n=n, template=template)
    colour = sys.stdout.isatty() and not os.environ.get("NO_COLOR")
    if not colour:
        typer.echo("(trained tokens are between [[ and ]])")
    for label, segments in views:
        typer.secho(f"── {label} " + "─" * 40, dim=True)
        for text, trained in segments:
            if colour:
                typer.secho(text, fg="green" if trained else None, bold=trained, nl=False)
            else:
                typer.echo(f"[[{text}]]" if trained else text, nl=False)
        typer.echo()


@app.command()
@friendly("data stats")
def stats(source: str = typer.Argument(..., help=SOURCE_HELP),
          cutoff: int = typer.Option(1024, min=1, help="cutoff_len to check."),
          registry: Path = REGISTRY, format: str = FORMAT, model: str = MODEL, template: str = TEMPLATE,
          plot: Path = typer.Option(None, help="Also save the histogram as a PNG here.")) -> None:
    """Token-length histogram and how many rows the cutoff would truncate.

    Example: ft data stats examples/identity/data/general_train.json --cutoff 64
    """
    from ft_data.inspect import length_stats

    result = length_stats(_tokenizer(model), _source(source, registry, format), cutoff=cutoff, template=template)
    n = len(result.lengths)
    typer.echo(f"{n} rows; tokens: min {min(result.lengths)}, median {result.percentile(0.5)}, "
               f"p95 {result.percentile(0.95)}, max {max(result.lengths)}")
    typer.echo(f"cutoff {cutoff}: {result.truncated} rows ({100 * result.truncated / n:.1f}%) would be truncated; "
               f"{len(result.skipped)} bad rows skipped; {result.empty_answers} with an empty answer, "
               f"{result.duplicates} exact duplicates")
    buckets = result.histogram()
    peak = max(c for _, _, c in buckets)
    for low, high, count in buckets:
        typer.echo(f"{low:>6}-{high:<6} {'█' * round(40 * count / peak) if peak else '':<40} {count}")
    if plot:
        _plot(result.lengths, cutoff, plot)
        typer.echo(f"plot: {plot}")


def _plot(lengths: list[int], cutoff: int, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
    ax.hist(lengths, bins=40)
    ax.axvline(cutoff, color="red", linestyle="--", label=f"cutoff {cutoff}")
    ax.set_xlabel("tokens per row")
    ax.set_ylabel("rows")
    ax.legend()
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


@app.command()
@friendly("data validate")
def validate(sources: list[str] = typer.Argument(..., help="Data files or registry names."),
             registry: Path = REGISTRY, format: str = FORMAT,
             stage: str = typer.Option(None, "--stage", "-s", help="Also check the rows suit this training stage "
                                       "(pt, sft, rm, dpo, orpo, kto, ppo, grpo).")) -> None:
    """Check every row of every source; list each bad row (file, row, key); exit 1 if any.

    Example: ft data validate data/train.jsonl data/eval.jsonl
    """
    from ft_core import FtError, did_you_mean
    from ft_data.inspect import validate as check
    from ft_data.stages import STAGES

    if stage is not None and stage not in STAGES:
        raise FtError(f"--stage: unknown stage '{stage}'{did_you_mean(stage, STAGES)}; known: {', '.join(STAGES)}")
    good, problems = check([_source(s, registry, format) for s in sources], stage)
    for problem in problems:
        typer.echo(problem, err=True)
    typer.echo(f"{good} good rows, {len(problems)} problems")
    if problems:
        raise typer.Exit(1)
