"""Run a training stage from a YAML file and leave a complete output_dir behind."""

from __future__ import annotations

import dataclasses
import logging
from dataclasses import dataclass
from pathlib import Path

import yaml

from ft_core import FtError, atomic_write_text
from ft_data import build_dataset, load_registry
from ft_models import load_tokenizer, resolve_source
from ft_train import memory
from ft_train._compat import checkpointing_names, resume_loads_every_adapter
from ft_train.checkpoints import CheckpointMarker, choose_resume, resume_point
from ft_train.config import RunConfig, load_run_config, remember_trainer_args
from ft_train.deepspeed_config import complete_deepspeed_config, join_deepspeed, require_deepspeed
from ft_train.defaults import trainer_defaults
from ft_train.launch import check_sharding, sharding_dropped
from ft_train.metrics import METRICS_FILE, PLOT_FILE, MetricsCallback
from ft_train.model_card import model_card
from ft_train.model_setup import INITIAL_ADAPTER, trainable_model, use_adapter_optimizer
from ft_train.rerun import RerunMode, check_rerun, clear_run
from ft_train.saving import save_weights
from ft_train.stages import Stage, get_stage
from ft_train.trainer_args import check_trainer_args, config_variant

CONFIG_COPY = "run_config.yaml"
log = logging.getLogger("ft_train")


@dataclass
class TrainResult:
    output_dir: Path
    weights_dir: Path  # the adapter (LoRA) or the full model
    metrics_file: Path
    plot_file: Path
    final_loss: float | None


def trainer_config(config: RunConfig, config_path: Path, stage: Stage):
    """The stage's TRL config from the ``train:`` keys (checked first), our defaults beneath them;
    its own errors name the YAML section."""
    user = config.train.trainer_args
    cls = stage.config_class(user)
    user = check_trainer_args(config_path, cls, user)
    args = {**stage.defaults(config), **trainer_defaults(user, lambda: _step_memory(config, user))}
    if config.data.eval or config.data.val_size:  # evaluate at each save unless told otherwise
        args.setdefault("eval_strategy", args.get("save_strategy", "steps"))
        if "save_steps" in args:
            args.setdefault("eval_steps", args["save_steps"])
    if args.get("deepspeed"):
        require_deepspeed(config_path)
        args["deepspeed"] = complete_deepspeed_config(args["deepspeed"], config_path)
    try:
        return cls(output_dir=config.train.output_dir, **checkpointing_names(cls, args))
    except (TypeError, ValueError) as e:
        raise FtError(f"{config_path}: train: {e}".replace("\n", " ")) from None


def _model_config(config: RunConfig):
    from transformers import AutoConfig

    from ft_models import model_path

    return AutoConfig.from_pretrained(model_path(config.model.source), revision=config.model.revision,
                                      trust_remote_code=config.model.trust_remote_code)


def check_packing(config: RunConfig, config_path: Path) -> None:
    """Refuse ``data.packing`` for a model whose layers carry a state along the sequence: restarting
    positions keep packed examples apart in attention, not there."""
    from ft_models import recurrent_layer_types

    if config.data.packing and config.train.stage != "pt":  # pt's blocks join documents by design
        kinds = recurrent_layer_types(_model_config(config))
        if kinds:
            raise FtError(f"{config_path}: data.packing: this model's {', '.join(kinds)} layers carry a state "
                          "from one token to the next, so packed examples would leak into each other: "
                          "set data.packing: false")


def _step_memory(config: RunConfig, user: dict):
    """A step's memory without gradient checkpointing, for the largest batch the config allows."""
    model = _model_config(config)
    tokens = int(user.get("per_device_train_batch_size", 8)) * config.data.cutoff_len
    quant = config.model.quantization
    weight_bytes = quant.bits / 8 if quant else 2
    adapter = config.adapter
    return memory.from_config(model, tokens=tokens, full=adapter.type != "lora", weight_bytes=weight_bytes,
                              lora_rank=adapter.r, lora_dropout=adapter.dropout > 0,
                              lora_input_copies=adapter.use_dora)


def stage_data(config: RunConfig, stage: Stage, seed: int = 0):
    """(tokenizer, ft-data's finished rows for the stage, held-out rows or None) as ``model:`` and
    ``data:`` say; ``val_size`` holds out a share (< 1) or a count of the rows."""
    tokenizer = load_tokenizer(config.model.source, revision=config.model.revision,
                               trust_remote_code=config.model.trust_remote_code)
    d = config.data

    registry = load_registry(d.registry) if d.registry else {}

    def source(f):
        if f.dataset is None:
            return f.path, f.format
        spec = registry[f.dataset]
        return dataclasses.replace(spec, max_samples=f.max_samples or spec.max_samples)

    def rows(files):
        return build_dataset(tokenizer, [source(f) for f in files], stage=stage.data_stage,
                             cutoff_len=d.cutoff_len, template=d.template, system=d.system,
                             default_system=d.default_system, train_on=d.train_on, packing=d.packing,
                             on_bad_row=d.on_bad_row, num_proc=d.num_proc)

    data = rows(d.train)
    log.info(data.summary())
    for problem in data.skipped_rows[:5]:
        log.info("skipped %s", problem)
    held_out = rows(d.eval).dataset if d.eval else None
    if d.val_size:
        size = d.val_size if d.val_size < 1 else int(d.val_size)
        if not 0 < (size if size >= 1 else round(size * data.examples)) < data.examples:
            raise FtError(f"data.val_size {d.val_size} leaves no training or no eval row of {data.examples}")
        parts = data.dataset.train_test_split(test_size=size, seed=seed)
        data, held_out = dataclasses.replace(data, dataset=parts["train"], examples=len(parts["train"])), parts["test"]
    if held_out is not None:
        log.info("%d rows held out for evaluation", len(held_out))
    return tokenizer, data, held_out


def _processes():
    """accelerate's view of the processes of this run (a single one unless torchrun started several)."""
    from accelerate import PartialState

    return PartialState()


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
    if rerun not in ("auto", "resume", "restart"):
        raise FtError(f"rerun must be auto, resume or restart, found {rerun!r}")
    config_path = Path(config_path)
    config = load_run_config(config_path)
    try:
        stage = get_stage(config.train.stage)
    except FtError as e:
        raise FtError(f"{config_path}: train.stage: {e}") from None
    args = trainer_config(config, config_path, stage)
    check_sharding(args)
    resolve_source(config.model.source)  # an unknown model fails before anything is written
    check_packing(config, config_path)
    out = Path(config.train.output_dir)
    settings = config.model_dump(mode="json")
    mode = "restart" if not config.train.resume else rerun
    check_rerun(config_path, out, out / CONFIG_COPY, settings, mode)
    processes = _processes()  # one, or those torchrun started: the first one writes, the others wait
    join_deepspeed(args)
    with processes.main_process_first():  # the first builds (and caches) the rows, the others read them
        tokenizer, data, held_out = stage_data(config, stage, args.seed)  # bad data stops here, nothing written yet
    if processes.is_main_process:
        if mode == "restart":
            clear_run(out)
        out.mkdir(parents=True, exist_ok=True)
        atomic_write_text(out / CONFIG_COPY, yaml.safe_dump(settings, sort_keys=False))
        # later config mistakes: named without TRL
        remember_trainer_args(config.train.stage, type(args), config_variant(config.train.stage, config.train.trainer_args))
        choose_resume(out)  # names and removes checkpoints cut off mid-write
    processes.wait_for_everyone()
    resume = resume_point(out)[0]
    if resume:
        log.info("resuming from %s", resume.name)
    model, spec = trainable_model(config, args, stage.head)
    trainer = stage.make_trainer(model=model, args=args, tokenizer=tokenizer, data=data, eval_data=held_out,
                                 callbacks=[MetricsCallback(out, stage.plotted, stage.perplexity), CheckpointMarker()])
    use_adapter_optimizer(trainer, spec)
    resume_loads_every_adapter(trainer)
    dropped = sharding_dropped(args, trainer)
    if dropped:
        log.warning("train.%s is set, but accelerate shards only on GPUs and other accelerators: each of the %d "
                    "%s processes holds the whole model (DDP where there are several)", dropped,
                    processes.num_processes, processes.device.type)
    trainer.train(resume_from_checkpoint=str(resume) if resume else None)
    if held_out is not None:
        trainer.evaluate()
    weights = out / ("adapter" if config.adapter.type == "lora" else "model")
    card = model_card(config, stage.name, data.summary(), trainer.state.log_history)
    converted = (out / INITIAL_ADAPTER).is_dir() and config.adapter.init in ("pissa", "olora")
    save_weights(trainer, tokenizer, weights, card, is_main=processes.is_main_process,
                 initial_adapter=out / INITIAL_ADAPTER if converted else None)
    processes.wait_for_everyone()
    losses = [r["loss"] for r in trainer.state.log_history if "loss" in r] or \
        [r["train_loss"] for r in trainer.state.log_history if "train_loss" in r]  # fewer steps than logging_steps
    return TrainResult(out, weights, out / METRICS_FILE, out / PLOT_FILE, losses[-1] if losses else None)
