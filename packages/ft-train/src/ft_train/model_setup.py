"""The model a stage trains: the base as ``model:`` says, made trainable as ``adapter:`` says."""

from __future__ import annotations

import logging
from pathlib import Path

from ft_core import FtError, atomic_dir
from ft_models import (
    AdapterSpec,
    Quantization,
    adapter_optimizer,
    apply_adapter,
    load_model,
    trainable_parameters,
)
from ft_train.config import RunConfig

log = logging.getLogger("ft_train")
INITIAL_ADAPTER = "adapter-init"  # PiSSA/OLoRA's starting adapter, to convert the result to plain LoRA


def load_base(config: RunConfig, head: str = "causal"):
    """The base model (``head`` causal, or score: one scalar per sequence), with the KV cache off."""
    m = config.model
    quant = Quantization(**m.quantization.model_dump()) if m.quantization else None
    model = load_model(m.source, dtype=m.dtype, attention=m.attention, quantization=quant,
                       context_length=m.context_length, rope_scaling=m.rope_scaling, revision=m.revision,
                       trust_remote_code=m.trust_remote_code, head=head)
    model.config.use_cache = False  # no KV cache in training; with one, packed positions would be ignored
    return model


def adapter_spec(config: RunConfig, head: str = "causal") -> AdapterSpec:
    a = config.adapter.model_dump()
    return AdapterSpec(**{**a, "trainable_modules": tuple(a["trainable_modules"]), "head": head})


def save_initial_adapter(model, folder: Path) -> None:
    """PiSSA/OLoRA change the base weights they start from; the starting adapter, saved once, lets
    the final one be converted into a plain LoRA for the original base (peft's documented route)."""
    if folder.is_dir():
        return
    config = model.peft_config["default"]
    init, config.init_lora_weights = config.init_lora_weights, True
    try:
        with atomic_dir(folder) as tmp:
            model.save_pretrained(tmp)
    finally:
        config.init_lora_weights = init


def _on_cpu(args) -> bool:
    import torch

    return bool(getattr(args, "use_cpu", False)) or not torch.cuda.is_available()


def _install_cpu_kernels(model, required: bool) -> None:
    from ft_train import kernels

    if not kernels.available():
        if required:
            raise FtError("train.cpu_kernels: true needs numba: pip install 'ft-train[cpu-kernels]'"
                          " (or leave the key out to use the kernels only where numba is installed)")
        return
    try:
        kernels.install(model)
    except Exception as error:  # numba present but unable to compile here: PyTorch's own ops still work
        if required:
            raise FtError(f"train.cpu_kernels: true, but numba could not build ft's kernels here: {error}") from error
        log.warning("fused CPU kernels off: numba could not build them here (%s); running PyTorch's own ops", error)


def trainable_model(config: RunConfig, args, head: str = "causal"):
    """(model, adapter spec): the base with its adapter, seeded so a resume rebuilds the same start
    (PiSSA's randomized SVD too). Give the spec to ``use_adapter_optimizer`` once the trainer exists."""
    from transformers import set_seed

    model = load_base(config, head)
    spec = adapter_spec(config, head)
    set_seed(args.seed)
    model = apply_adapter(model, spec)
    if spec.init in ("pissa", "olora"):
        from accelerate import PartialState

        processes = PartialState()
        if processes.is_main_process:  # one process writes it, the others wait for it
            save_initial_adapter(model, Path(config.train.output_dir) / INITIAL_ADAPTER)
        processes.wait_for_everyone()
    if _on_cpu(args):
        from ft_train.stages import lora_compute

        lora_compute.install(model)  # a bf16 base's LoRA branch in bf16 (fp32 weights kept): no-op on fp32
        if config.train.cpu_kernels is not False:
            _install_cpu_kernels(model, required=bool(config.train.cpu_kernels))
    trainable, total = trainable_parameters(model)
    log.info("training %s of %s parameters (%.2f%%)", f"{trainable:,}", f"{total:,}", 100 * trainable / total)
    return model, spec


def use_adapter_optimizer(trainer, spec: AdapterSpec) -> None:
    """LoRA+ (``spec.loraplus_ratio``): the trainer builds its optimizer with LoRA+'s parameter
    groups when it builds one, from the model it trains by then (FSDP-wrapped, DeepSpeed-partitioned,
    PPO's value head included). A ready optimizer passed to the Trainer is refused under FSDP, and one
    built before PPO wraps the policy leaves the value head untrained."""
    if not spec.loraplus_ratio:
        return
    args = trainer.args

    def create_optimizer(model=None):
        if trainer.optimizer is None:
            trainer.optimizer = adapter_optimizer(model if model is not None else trainer.model, spec,
                                                  lr=args.learning_rate, weight_decay=args.weight_decay)
        return trainer.optimizer

    trainer.create_optimizer = create_optimizer
