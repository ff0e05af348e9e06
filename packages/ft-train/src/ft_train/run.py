"""Run a training stage from a YAML file and leave a complete output_dir behind."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import yaml

from ft_core import FtError, atomic_dir, atomic_write_text
from ft_models import resolve_source
from ft_train.checkpoints import choose_resume
from ft_train.config import load_run_config
from ft_train.metrics import METRICS_FILE, PLOT_FILE
from ft_train.rerun import RerunMode, check_rerun, clear_run
from ft_train.stages.sft import INITIAL_ADAPTER, make_sft_config, run_sft, sft_data
from ft_train.trainer_args import check_trainer_args

CONFIG_COPY = "run_config.yaml"


@dataclass
class TrainResult:
    output_dir: Path
    weights_dir: Path  # the adapter (LoRA) or the full model
    metrics_file: Path
    plot_file: Path
    final_loss: float | None


def run_training(config_path: str | Path, *, rerun: RerunMode = "auto") -> TrainResult:
    """Train as ``config_path`` says; an interrupted run resumes from its last complete checkpoint.

    A rerun into an output_dir whose recorded config differs (in more than the step budget) is
    refused unless ``rerun`` is ``resume`` (continue with the new settings) or ``restart`` (remove
    the earlier run's checkpoints and results first); ``train.resume: false`` means ``restart``.

    Example:
        >>> result = run_training("examples/sft_lora_demo.yaml")  # doctest: +SKIP
        >>> sorted(p.name for p in result.output_dir.iterdir())  # doctest: +SKIP
        ['adapter', 'checkpoint-47', 'loss.png', 'metrics.jsonl', 'run_config.yaml']
    """
    from trl import SFTConfig

    if rerun not in ("auto", "resume", "restart"):
        raise FtError(f"rerun must be auto, resume or restart, found {rerun!r}")
    config_path = Path(config_path)
    config = load_run_config(config_path)
    config.train.model_extra.update(check_trainer_args(config_path, SFTConfig, config.train.trainer_args))
    sft_args = make_sft_config(config, config_path)
    resolve_source(config.model.source)  # an unknown model fails before anything is written
    out = Path(config.train.output_dir)
    settings = config.model_dump(mode="json")
    mode = "restart" if not config.train.resume else rerun
    check_rerun(config_path, out, out / CONFIG_COPY, settings, mode)
    tokenizer, data = sft_data(config)  # bad data stops the run here, before anything is written
    if mode == "restart":
        clear_run(out)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / CONFIG_COPY, yaml.safe_dump(settings, sort_keys=False))
    resume = choose_resume(out)
    if resume:
        print(f"ft: resuming from {resume.name}", flush=True)
    trainer = run_sft(config, sft_args, tokenizer, data, str(resume) if resume else None)
    weights = out / ("adapter" if config.adapter.type == "lora" else "model")
    with atomic_dir(weights, force=True, made_by="ft train") as tmp:  # the run's own folder
        if (out / INITIAL_ADAPTER).is_dir() and config.adapter.init in ("pissa", "olora"):
            # a plain LoRA (rank 2r) for the original base, not for PiSSA's residual weights
            trainer.model.save_pretrained(tmp, path_initial_model_for_weight_conversion=str(out / INITIAL_ADAPTER))
        else:
            trainer.save_model(str(tmp))
        tokenizer.save_pretrained(tmp)
    losses = [r["loss"] for r in trainer.state.log_history if "loss" in r] or \
        [r["train_loss"] for r in trainer.state.log_history if "train_loss" in r]  # fewer steps than logging_steps
    return TrainResult(out, weights, out / METRICS_FILE, out / PLOT_FILE, losses[-1] if losses else None)
