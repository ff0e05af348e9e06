"""Fused CPU kernels for the elementwise work of a training step (optional: numba).

On a CPU a LoRA step spends most of its time outside the GEMMs in chains of elementwise passes
that eager PyTorch runs one by one, each over the whole activation: an RMSNorm's forward and
backward is about a dozen of them. The kernels here do such a chain in one pass per row, compiled
by numba (``pip install ft-train[cpu-kernels]``) and cached under ``FT_HOME``, so a machine
compiles them once. Where numba is not installed, or a module is not one a kernel reproduces,
the model's own code runs unchanged.

Example:
    >>> import torch
    >>> from transformers.models.llama.modeling_llama import LlamaRMSNorm
    >>> model = torch.nn.Sequential(LlamaRMSNorm(8).to(torch.bfloat16).requires_grad_(False))
    >>> installed = install(model)  # {"rms_norm": 1} where numba is installed, else {}
"""

from __future__ import annotations

import importlib.util
import logging

log = logging.getLogger("ft_train")
FUSED_SOFTMAX = "_ft_fused_softmax"  # set on a frozen LM head whose label softmax takes the kernel


def available() -> bool:
    """Whether numba can be imported (the ``cpu-kernels`` extra)."""
    return importlib.util.find_spec("numba") is not None


def install(model) -> dict[str, int]:
    """Route ``model``'s modules that a kernel reproduces through it; returns ``{kernel: modules}``
    (empty where numba is missing). Only CPU bf16 activations take the kernels; anything else
    runs the module's own forward at call time."""
    if not available():
        return {}
    from ft_train.kernels import rms_norm

    warm_up()
    counts = {name: n for name, n in (("rms_norm", rms_norm.install(model)),
                                      ("label_softmax", _mark_head(model))) if n}
    if counts:
        log.info("fused CPU kernels (numba): %s", ", ".join(f"{n} {name}" for name, n in counts.items()))
    return counts


def warm_up() -> None:
    """Compile (or load from the cache) every kernel on a tiny input, so that a machine where numba
    cannot compile them fails here, before a model is patched, and not in a training step."""
    import torch

    from ft_train.kernels import label_softmax, rms_norm

    x = torch.ones(2, 8, dtype=torch.bfloat16, requires_grad=True)
    rms_norm._FusedRMSNorm.apply(x, torch.ones(8, dtype=torch.bfloat16), 1e-6).sum().backward()
    label_softmax.softmax_rows(torch.zeros(2, 8, dtype=torch.bfloat16), torch.tensor([0, 7]))


def _mark_head(model) -> int:
    """Mark the model's plain linear LM head for ``label_softmax`` (used by
    ``ft_train.stages.label_logprobs`` where the head is frozen and the activations bf16)."""
    from ft_train.stages.plain_head import frozen_linear_head

    head = frozen_linear_head(model)
    if head is None:
        return 0
    setattr(head, FUSED_SOFTMAX, True)
    return 1
