"""Will a training step fit on the GPU without gradient checkpointing? An estimate from the
model's config, the batch and the adapter, so checkpointing (a third more compute per step) is
turned on only where memory needs it.

Example:
    >>> est = step_memory(layers=24, hidden=896, intermediate=4864, vocab=151936, kv_hidden=128,
    ...                   tokens=8 * 1024, full=False)
    >>> round(est.total / 1e9, 1), est.fits(80e9)
    (23.9, True)
"""

from __future__ import annotations

from dataclasses import dataclass

HEADROOM = 0.8  # the allocator's fragmentation, CUDA context, the evaluation pass


@dataclass(frozen=True)
class StepMemory:
    """Bytes one optimizer step needs, by part, without gradient checkpointing."""

    weights: int
    optimizer: int  # gradients and Adam moments of the trained parameters (fp32)
    activations: int  # kept for the backward pass, every layer
    logits: int  # bf16 logits, their fp32 upcast for the loss and its gradient

    @property
    def total(self) -> int:
        return self.weights + self.optimizer + self.activations + self.logits

    def fits(self, gpu_bytes: float) -> bool:
        return self.total <= HEADROOM * gpu_bytes


def parameter_count(layers: int, hidden: int, intermediate: int, vocab: int, kv_hidden: int,
                    tied: bool = True) -> int:
    """Parameters of a Llama-style decoder: attention (q, o full; k, v at the KV width), a gated
    MLP, embeddings (and an untied head)."""
    attention = 2 * hidden * hidden + 2 * hidden * kv_hidden
    return layers * (attention + 3 * hidden * intermediate) + vocab * hidden * (1 if tied else 2)


def step_memory(*, layers: int, hidden: int, intermediate: int, vocab: int, kv_hidden: int, tokens: int,
                full: bool, weight_bytes: float = 2, tied: bool = True) -> StepMemory:
    """The estimate for ``tokens`` tokens a step (batch x sequence length) in bf16; ``full`` trains
    every weight (otherwise an adapter, whose parameters are negligible); ``weight_bytes`` is 0.5
    or 1 for a 4- or 8-bit base."""
    params = parameter_count(layers, hidden, intermediate, vocab, kv_hidden, tied)
    # per token and layer: the attention block keeps ~8 hidden-wide tensors, the gated MLP ~4
    # intermediate-wide ones (gate, up, activation, product); flash/sdpa keep no score matrix
    activations = tokens * layers * (8 * hidden + 4 * intermediate) * 2
    return StepMemory(weights=int(params * weight_bytes), optimizer=params * 12 if full else 0,
                      activations=activations, logits=tokens * vocab * (2 + 8))


def from_config(config, *, tokens: int, full: bool, weight_bytes: float = 2) -> StepMemory:
    """The estimate for a transformers config (text config of multimodal models)."""
    config = getattr(config, "get_text_config", lambda: config)()
    hidden = config.hidden_size
    heads = config.num_attention_heads
    head_dim = getattr(config, "head_dim", None) or hidden // heads
    kv_hidden = (getattr(config, "num_key_value_heads", None) or heads) * head_dim
    return step_memory(layers=config.num_hidden_layers, hidden=hidden,
                       intermediate=getattr(config, "intermediate_size", None) or 4 * hidden,
                       vocab=config.vocab_size, kv_hidden=kv_hidden, tokens=tokens, full=full,
                       weight_bytes=weight_bytes, tied=bool(getattr(config, "tie_word_embeddings", True)))


def checkpointing_choice(estimate: StepMemory, gpu_bytes: float) -> tuple[bool, str]:
    """(turn gradient checkpointing on?, the reason, for the log)."""
    need, have = estimate.total / 1e9, HEADROOM * gpu_bytes / 1e9
    if estimate.fits(gpu_bytes):
        return False, f"gradient checkpointing off: a step needs about {need:.1f} GB, {have:.0f} GB usable"
    return True, f"gradient checkpointing on: a step would need about {need:.1f} GB, {have:.0f} GB usable"
