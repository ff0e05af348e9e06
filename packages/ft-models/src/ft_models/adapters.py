"""What trains: PEFT adapters (LoRA, DoRA, rsLoRA, PiSSA initialisation, LoRA+ learning rates),
freeze tuning (the last N decoder layers or named modules) or the full model.

Example:
    >>> spec = AdapterSpec(type="lora", r=8, use_dora=True)
    >>> model = apply_adapter(model, spec)                      # doctest: +SKIP
    >>> optimizer = adapter_optimizer(model, spec, lr=2e-4)     # LoRA+ when spec.loraplus_ratio  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from ft_core import FtError, did_you_mean
from ft_models.lora_autocast import skip_input_casts_under_autocast

ADAPTER_TYPES = ("lora", "freeze", "full")
LORA_INITS = ("default", "gaussian", "pissa", "olora")
HEADS = ("causal", "score")


@dataclass(frozen=True)
class AdapterSpec:
    """How a model is made trainable.

    - ``lora``: ``r``, ``alpha``, ``dropout``, ``target_modules`` (``all-linear``: every linear
      layer but the LM head; or module names), ``use_dora``, ``use_rslora`` (alpha/sqrt(r)),
      ``init`` (``pissa`` starts from the principal singular vectors, with ``pissa_niter`` fast-SVD
      iterations), ``loraplus_ratio`` (B matrices learn that many times faster; see
      ``adapter_optimizer``). ``start_from``: an adapter folder (an earlier run's
      ``output_dir/adapter``) to continue training instead of a new LoRA; its own settings (r,
      alpha, targets) and weights are used, and the ones given here are not.
    - ``freeze``: the last ``trainable_layers`` decoder layers and any parameter whose name contains
      one of ``trainable_modules`` train; the rest is frozen.
    - ``full``: every parameter trains.
    """

    type: str = "lora"
    r: int = 16
    alpha: int = 32
    dropout: float = 0.05
    target_modules: str | Sequence[str] = "all-linear"
    use_dora: bool = False
    use_rslora: bool = False
    init: str = "default"
    pissa_niter: int | None = 4
    loraplus_ratio: float | None = None
    trainable_layers: int = 2
    trainable_modules: Sequence[str] = field(default_factory=tuple)
    head: str = "causal"  # score: a reward model, whose new score head trains in full beside the LoRA
    start_from: str | None = None

    def __post_init__(self):
        if self.type not in ADAPTER_TYPES:
            raise FtError(f"unknown adapter type '{self.type}'{did_you_mean(self.type, ADAPTER_TYPES)}; "
                          f"use {', '.join(ADAPTER_TYPES)}")
        if self.init not in LORA_INITS:
            raise FtError(f"unknown LoRA init '{self.init}'{did_you_mean(self.init, LORA_INITS)}; use {', '.join(LORA_INITS)}")
        if self.loraplus_ratio is not None and self.loraplus_ratio <= 0:
            raise FtError(f"loraplus_ratio must be positive, found {self.loraplus_ratio}")
        for name in ("r", "alpha"):
            if getattr(self, name) <= 0:
                raise FtError(f"{name} must be positive, found {getattr(self, name)}")
        if not 0 <= self.dropout < 1:
            raise FtError(f"dropout must be at least 0 and below 1, found {self.dropout}")
        if self.trainable_layers < 0:
            raise FtError(f"trainable_layers must be 0 or more, found {self.trainable_layers}")
        if self.head not in HEADS:
            raise FtError(f"head must be one of {', '.join(HEADS)}, found {self.head!r}")
        if self.start_from is not None:
            self._check_start_from()

    def _check_start_from(self) -> None:
        if self.type != "lora":
            raise FtError(f"start_from continues a LoRA adapter; adapter type {self.type!r} trains the model's own weights")
        if self.init != "default":
            raise FtError(f"start_from continues trained weights; init {self.init!r} would start new ones")
        if self.head != "causal":
            raise FtError("start_from continues a causal LM adapter; a reward model (head score) starts a new one")


def _init_weights(spec: AdapterSpec):
    if spec.init == "default":
        return True
    if spec.init == "pissa" and spec.pissa_niter:
        return f"pissa_niter_{spec.pissa_niter}"
    return spec.init


def add_lora(model, *, r: int = 16, alpha: int = 32, dropout: float = 0.05,
             target_modules: str | Sequence[str] = "all-linear", use_dora: bool = False, use_rslora: bool = False,
             init: str = "default", pissa_niter: int | None = 4):
    """Wrap ``model`` in a trainable LoRA adapter (peft); ``all-linear`` skips the LM head.

    Example:
        >>> peft_model = add_lora(model, r=8, alpha=16, use_dora=True)  # doctest: +SKIP
    """
    return apply_adapter(model, AdapterSpec("lora", r=r, alpha=alpha, dropout=dropout, target_modules=target_modules,
                                            use_dora=use_dora, use_rslora=use_rslora, init=init, pissa_niter=pissa_niter))


def apply_adapter(model, spec: AdapterSpec):
    """``model`` made trainable as ``spec`` says: a ``PeftModel`` for lora, the model itself otherwise."""
    if spec.type == "full":
        for p in model.parameters():
            p.requires_grad_(True)
        return model
    if spec.type == "freeze":
        return _freeze(model, spec)
    from peft import LoraConfig, get_peft_model

    if spec.start_from is not None:
        return load_adapter(_prepared_for_kbit(model), spec.start_from, trainable=True)
    targets = spec.target_modules if isinstance(spec.target_modules, str) else list(spec.target_modules)
    config = LoraConfig(r=spec.r, lora_alpha=spec.alpha, lora_dropout=spec.dropout, target_modules=targets,
                        use_dora=spec.use_dora, use_rslora=spec.use_rslora, init_lora_weights=_init_weights(spec),
                        task_type="CAUSAL_LM" if spec.head == "causal" else "SEQ_CLS")
    model = _prepared_for_kbit(model)
    try:
        model = get_peft_model(model, config)
    except ValueError as e:
        if "not found in the base model" in str(e) or "Target modules" in str(e):
            names = sorted({n.rsplit(".", 1)[-1] for n, m in model.named_modules() if type(m).__name__.endswith("Linear")})
            raise FtError(f"LoRA target_modules {targets} match nothing in {type(model).__name__}; "
                          f"its linear layers are {', '.join(names)}") from None
        raise
    skip_input_casts_under_autocast(model)
    return model


def _prepared_for_kbit(model):
    """A 4/8-bit model made ready for an adapter to train on it; any other model as it is."""
    if getattr(model, "is_loaded_in_4bit", False) or getattr(model, "is_loaded_in_8bit", False):
        from peft import prepare_model_for_kbit_training

        # fp32 norms and inputs that carry gradients; checkpointing is prepare_for_training's business
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=False)
    return model


def decoder_layers(model):
    """The model's decoder layer list, found by introspection (the longest ModuleList of blocks)."""
    import torch

    lists = [m for m in model.modules() if isinstance(m, torch.nn.ModuleList) and len(m)
             and sum(p.numel() for p in m[0].parameters()) > 0]
    if not lists:
        raise FtError(f"{type(model).__name__} has no list of layers to freeze or unfreeze")
    return max(lists, key=len)


def _freeze(model, spec: AdapterSpec):
    layers = decoder_layers(model)
    if not 0 <= spec.trainable_layers <= len(layers):
        raise FtError(f"trainable_layers must be between 0 and the model's {len(layers)} layers, found {spec.trainable_layers}")
    for p in model.parameters():
        p.requires_grad_(False)
    for layer in list(layers)[len(layers) - spec.trainable_layers:]:
        for p in layer.parameters():
            p.requires_grad_(True)
    if spec.head == "score":  # a reward model's new head always trains
        for n, p in model.named_parameters():
            if n.startswith("score."):
                p.requires_grad_(True)
    names = [n for n, _ in model.named_parameters()]
    for wanted in spec.trainable_modules:
        matched = [n for n in names if wanted in n]
        if not matched:
            hint = did_you_mean(wanted, sorted({part for n in names for part in n.split(".")}))
            raise FtError(f"trainable_modules: '{wanted}' matches no parameter of {type(model).__name__}{hint}")
        for n, p in model.named_parameters():
            if wanted in n:
                p.requires_grad_(True)
    if spec.trainable_layers == 0 and not spec.trainable_modules:
        raise FtError("freeze tuning with trainable_layers 0 and no trainable_modules would train nothing")
    return model


def adapter_optimizer(model, spec: AdapterSpec, *, lr: float, weight_decay: float = 0.0):
    """AdamW over the trainable parameters; with ``spec.loraplus_ratio`` the LoRA+ parameter
    groups (B matrices at ``lr * ratio``) through peft's ``create_loraplus_optimizer``."""
    import torch

    if spec.loraplus_ratio:
        if spec.type != "lora":
            raise FtError("loraplus_ratio applies to LoRA adapters only")
        from peft.optimizers import create_loraplus_optimizer

        return create_loraplus_optimizer(model, torch.optim.AdamW, lr=lr, loraplus_lr_ratio=spec.loraplus_ratio,
                                         weight_decay=weight_decay)
    return torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=lr, weight_decay=weight_decay)


def load_adapter(model, adapter_dir: str, *, trainable: bool = False, check: bool = True):
    """Attach the adapter saved in ``adapter_dir`` to ``model`` (``trainable`` to continue training it).

    ``check`` first compares the adapter with the model (see ``check_adapter_fits``); pass False
    where ``check_adapter_for`` already did so before the model loaded."""
    from peft import PeftModel

    from ft_models.adapter_check import check_adapter_fits

    adapter_dir = require_adapter(adapter_dir)
    if check:
        check_adapter_fits(model, adapter_dir)
    model = PeftModel.from_pretrained(model, str(adapter_dir), is_trainable=trainable)
    skip_input_casts_under_autocast(model)
    return model


def require_adapter(adapter_dir: str | Path) -> Path:
    """The saved adapter folder ``adapter_dir`` names: the folder itself, or the ``adapter`` folder
    in a run's output folder (LLaMA-Factory's YAMLs name a run's output_dir, where it saves the
    adapter; ft saves it in output_dir/adapter). Else an FtError saying what it is instead."""
    folder = Path(adapter_dir)
    if not folder.is_dir():
        what = "is a file, not a folder" if folder.exists() else "does not exist"
        raise FtError(f"adapter folder {folder} {what}; pass a run's output_dir/adapter")
    if (folder / "adapter_config.json").is_file():
        return folder
    if (folder / "adapter" / "adapter_config.json").is_file():
        return folder / "adapter"
    raise FtError(f"adapter folder {folder} has no adapter_config.json, nor an adapter/ folder with one; "
                  "pass a run's output_dir/adapter")


def trainable_parameters(model) -> tuple[int, int]:
    """(trainable, total) parameter counts; a parameter that DeepSpeed ZeRO-3 partitioned counts
    whole (``ds_numel``), not as the empty placeholder each process holds."""
    def count(p) -> int:
        return getattr(p, "ds_numel", None) or p.numel()

    trainable = sum(count(p) for p in model.parameters() if p.requires_grad)
    total = sum(count(p) for p in model.parameters())
    return trainable, total
