"""metrics.jsonl written as training logs arrive, and loss.png drawn from it."""

from __future__ import annotations

import json
import math
from pathlib import Path

from transformers import TrainerCallback

from ft_core import atomic_write_text

METRICS_FILE = "metrics.jsonl"
PLOT_FILE = "loss.png"


def read_metrics(path: str | Path) -> list[dict]:
    """The logged records of a run, oldest first."""
    path = Path(path)
    if not path.is_file():
        return []
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


STAGE_PLOT_FILE = "metrics.png"


def _save(fig, out_path: str | Path) -> Path:
    import matplotlib.pyplot as plt

    fig.tight_layout()
    tmp = Path(out_path).with_suffix(".tmp.png")
    fig.savefig(tmp)
    plt.close(fig)
    tmp.replace(out_path)
    return Path(out_path)


def plot_metrics(metrics_path: str | Path, out_path: str | Path, keys: tuple[str, ...]) -> Path | None:
    """One panel per logged metric in ``keys`` (train and eval) against step; None if none was logged."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    records = read_metrics(metrics_path)
    found = [k for k in keys if any(k in r or f"eval_{k}" in r for r in records)]
    if not found:
        return None
    fig, axes = plt.subplots(1, len(found), figsize=(3.6 * len(found), 3.4), dpi=100, squeeze=False)
    for ax, key in zip(axes[0], found, strict=True):
        for name in (key, f"eval_{key}"):
            points = [(r["step"], r[name]) for r in records if name in r]
            if points:
                ax.plot(*zip(*points, strict=True), marker="o", markersize=3, label=name)
        ax.set_title(key)
        ax.set_xlabel("step")
        ax.grid(alpha=0.3)
    axes[0][0].legend()
    return _save(fig, out_path)


def plot_loss(metrics_path: str | Path, out_path: str | Path) -> Path | None:
    """Training (and eval) loss against step as a PNG; None if nothing was logged yet."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    records = read_metrics(metrics_path)
    series = {key: [(r["step"], r[key]) for r in records if key in r] for key in ("loss", "eval_loss")}
    if not any(series.values()):
        return None
    fig, ax = plt.subplots(figsize=(7, 4), dpi=100)
    for key, points in series.items():
        if points:
            ax.plot(*zip(*points, strict=True), marker="o", markersize=3, label=key)
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.set_title(Path(out_path).parent.name or "training loss")
    ax.grid(alpha=0.3)
    ax.legend()
    return _save(fig, out_path)


class MetricsCallback(TrainerCallback):
    """Append every log to ``metrics.jsonl``; redraw ``loss.png`` (and ``metrics.png`` with the
    stage's ``plotted`` metrics) at each save and at the end."""

    def __init__(self, output_dir: str | Path, plotted: tuple[str, ...] = (), perplexity: bool = False):
        self.path = Path(output_dir) / METRICS_FILE
        self.plot = Path(output_dir) / PLOT_FILE
        self.plotted = plotted
        self.perplexity = perplexity  # eval_loss is a language-model loss: log exp(eval_loss) too

    def _draw(self) -> None:
        plot_loss(self.path, self.plot)
        if self.plotted:
            plot_metrics(self.path, self.plot.with_name(STAGE_PLOT_FILE), self.plotted)

    def on_train_begin(self, args, state, control, **kwargs):
        if not state.is_world_process_zero:
            return
        # After a resume, drop records past the checkpoint so steps are not logged twice.
        kept = [r for r in read_metrics(self.path) if r.get("step", 0) <= state.global_step]
        atomic_write_text(self.path, "".join(json.dumps(r) + "\n" for r in kept))

    def on_log(self, args, state, control, logs=None, **kwargs):
        if not state.is_world_process_zero or not logs:
            return
        if self.perplexity and "eval_loss" in logs:
            logs["eval_perplexity"] = math.exp(min(logs["eval_loss"], 50.0))
        record = {"step": state.global_step, "epoch": state.epoch, **logs}
        with self.path.open("a", encoding="utf-8") as f:
            f.write(json.dumps(record) + "\n")

    def on_save(self, args, state, control, **kwargs):
        if state.is_world_process_zero:
            self._draw()

    def on_train_end(self, args, state, control, **kwargs):
        if state.is_world_process_zero:
            self._draw()
