"""The README.md saved beside the trained weights: what was trained on what, how, and how it went."""

from __future__ import annotations

from importlib import metadata

import yaml

from ft_train.config import RunConfig


def _final(log_history: list[dict], key: str) -> float | None:
    values = [r[key] for r in log_history if key in r]
    return values[-1] if values else None


def model_card(config: RunConfig, stage: str, data_summary: str, log_history: list[dict]) -> str:
    """Markdown: base model, stage, data, adapter and training settings, final losses, versions.

    Example:
        >>> from ft_train.config import RunConfig
        >>> config = RunConfig.model_validate({"data": {"train": ["a.jsonl"]}, "train": {"output_dir": "o"}})
        >>> print(model_card(config, "sft", "3 sft examples", [{"loss": 1.5}]).splitlines()[0])
        # smollm2-135m-instruct, sft with ft
    """
    trained = config.adapter.type
    lines = [f"# {config.model.source}, {stage} with ft", "",
             f"- base model: `{config.model.source}`",
             f"- stage: `{stage}`; weights: {'a LoRA adapter' if trained == 'lora' else trained + ' fine-tuning'}",
             f"- data: {', '.join(f.dataset or f.path for f in config.data.train)} ({data_summary})"]
    for key in ("loss", "train_loss", "eval_loss", "eval_perplexity"):
        value = _final(log_history, key)
        if value is not None:
            lines.append(f"- final {key.replace('_', ' ')}: {value:.4f}")
    versions = {d: metadata.version(d) for d in ("ft-train", "transformers", "trl", "peft", "torch")}
    lines += ["- versions: " + ", ".join(f"{d} {v}" for d, v in versions.items()), "",
              "## Run config", "", "```yaml", yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False).rstrip(),
              "```", "", "Load it with `ft chat --adapter THIS_FOLDER` (or `ft export` to merge it into its base).", ""]
    return "\n".join(lines)
